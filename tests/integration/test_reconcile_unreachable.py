"""An exchange the reconciliation cannot reach makes its task amber on ``/health``
(``background``), not only the account under ``exchanges``: the code
(``EXCHANGE_UNAVAILABLE``) and since when, kept while every round finds the exchange
unreachable, one log line a round naming the account, never a traceback; the first round
that reaches it again turns the task green. The exchange is the local simulator with its
API port closed (connections refused), through the real ccxt client; the round runs as
the server's schedule runs it (``CheckpointSchedule``), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from application.audit_trail import CheckpointSchedule
from application.reconciliation import Reconciler
from application.task_health import tasks_health
from tests.exchange_simulator import running_simulator
from tests.integration.test_live_trading import LiveWorld, candles  # noqa: F401

pytestmark = pytest.mark.timeout(180)


def test_an_unreachable_exchange_is_an_amber_task_until_a_round_reaches_it(
        persistent_store_url, candles, caplog):  # noqa: F811
    with running_simulator(speed=0) as sim:
        world = LiveWorld(persistent_store_url, sim, seed="unreachable")
        account = str(world.account)
        world.feed(candles, 0, 2)  # the bot trades on the exchange
        reconciler = Reconciler(world.runner)
        at = [world.clock.now()]  # the round's time: a minute a round
        schedule = CheckpointSchedule(lambda: reconciler.run(at[0]), 60,
                                      name="reconciliation", now=lambda: at[0])

        def round_at(minutes: int) -> dict:
            at[0] = world.clock.now() + timedelta(minutes=minutes)
            schedule.run_once()
            return tasks_health([schedule])[1]["tasks"]["reconciliation"]

        try:
            assert round_at(0)["status"] == "green"
            sim.go_down()  # the exchange's port closed: connections refused
            with caplog.at_level(logging.INFO):
                task = round_at(1)
                down_at = at[0].isoformat()
                assert task["status"] == "amber" and task["rounds"] == 2
                assert task["error"]["code"] == "EXCHANGE_UNAVAILABLE"
                assert (task["error"]["since"], task["error"]["failures"]) == (down_at, 1)
                assert tasks_health([schedule])[0] == "amber"
                task = round_at(2)  # still down: still amber, since the first round
                assert (task["status"], task["error"]["code"]) == ("amber",
                                                                   "EXCHANGE_UNAVAILABLE")
                assert (task["error"]["since"], task["error"]["failures"]) == (down_at, 2)
                assert task["error"]["last_at"] == at[0].isoformat()
            status, exchanges = reconciler.health()  # the account, as before
            assert (status, exchanges["accounts"][account]["status"]) == ("amber",
                                                                          "unreachable")
            lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(lines) == 2, lines  # one a round
            assert all("EXCHANGE_UNAVAILABLE" in line and account in line
                       and "\n" not in line for line in lines), lines
            assert not any(r.exc_info for r in caplog.records)

            sim.come_up()
            task = round_at(3)
            assert (task["status"], task["error"], task["rounds"]) == ("green", None, 4)
            assert task["last_ok_at"] == at[0].isoformat()
            assert reconciler.health()[0] == "green"
        finally:
            sim.come_up()
            world.trading.close()
