"""A reconciliation round that meets an error outside the known codes (the exchange's
balance answer our code cannot read) is shown, not only logged: the reconciliation task
amber on ``/health`` (``background``: the error's kind and when, never its message), the
account amber under ``exchanges`` with the same kind; one log line, no traceback. The next
round that succeeds clears both. The round runs as the server's schedule runs it
(``CheckpointSchedule``, one round at a time), on the real ccxt client against the local
exchange simulator; only the balance is broken, by a fake wrapping that client."""

from __future__ import annotations

import logging

import pytest

from application.audit_trail import CheckpointSchedule
from application.paper_trading import PaperTrading
from application.reconciliation import Reconciler
from application.task_health import tasks_health
from tests.exchange_simulator import running_simulator
from tests.exchange_simulator.venues import simulator_venue
from tests.integration.test_live_trading import LiveWorld, candles  # noqa: F401

pytestmark = pytest.mark.timeout(120)


class BalanceUnreadable:
    """The account's exchange, whose balance answer cannot be read while ``broken``."""

    def __init__(self, exchange):
        self.exchange, self.broken = exchange, True

    def fetch_balance(self):
        if self.broken:
            raise KeyError("free")  # as a parser meeting an answer it does not know
        return self.exchange.fetch_balance()

    def __getattr__(self, name):
        return getattr(self.exchange, name)


class World(LiveWorld):
    def _runner(self) -> PaperTrading:
        def venues(account, pair):
            return simulator_venue(self.sim, str(account.id), pair)

        self.own = BalanceUnreadable(simulator_venue(self.sim, "own", "BTC/USDT").exchange)
        venues.reconciliation_exchange = lambda account_id: self.own
        runner = PaperTrading(self.trading, self.trading.ids, None,  # live accounts only
                              live_venues=venues)
        runner.resume()
        return runner


def test_an_unexpected_reconciliation_error_is_amber_until_a_round_succeeds(
        tmp_path, candles, caplog):  # noqa: F811
    with running_simulator(speed=0) as sim:
        world = World(f"sqlite:///{tmp_path / 'unexpected.sqlite'}", sim)
        world.feed(candles, 0, 2)  # the bot trades on the exchange
        reconciler = Reconciler(world.runner)
        schedule = CheckpointSchedule(lambda: reconciler.run(world.clock.now()), 60,
                                      name="reconciliation", now=world.clock.now)
        with caplog.at_level(logging.INFO):
            schedule.run_once()
        status, detail = tasks_health([schedule])
        task = detail["tasks"]["reconciliation"]
        assert status == "amber" and task["status"] == "amber"
        assert task["error"]["kind"] == "KeyError" and task["error"]["failures"] == 1
        assert task["error"]["since"] == task["error"]["last_at"]
        assert "free" not in str(detail)  # the kind, never the message
        status, accounts = reconciler.health()
        account = accounts["accounts"][str(world.account)]
        assert (status, account["status"], account["error"]) == (
            "amber", "unreachable", "KeyError")
        lines = [r for r in caplog.records if "reconciliation failed" in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None
        assert "KeyError" in lines[0].getMessage()

        world.own.broken = False
        schedule.run_once()
        status, detail = tasks_health([schedule])
        assert (status, detail["tasks"]["reconciliation"]["error"]) == ("green", None)
        assert reconciler.health()[0] == "green"
        assert world.events("BalanceObserved")
        world.trading.close()
