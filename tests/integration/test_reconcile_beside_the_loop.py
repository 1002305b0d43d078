"""A slow exchange holds no trading step: while the reconciliation of a live account waits
for the exchange's answer (the simulator holding it), the runner keeps stepping the
account's candles (its bot's orders placed and followed on the same exchange); the
reconciliation then records what it found once, through the runner's lock."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from application.reconciliation import Reconciler
from tests.exchange_simulator import running_simulator
from tests.integration.test_live_trading import T0, LiveWorld, candles  # noqa: F401

pytestmark = pytest.mark.timeout(120)
HOLD = 9.0  # the exchange's answer to the balance request: slow, within ccxt's 10 s
STEPS = 3


def test_a_slow_exchange_answering_the_reconciliation_delays_no_trading_step(
        tmp_path, candles):  # noqa: F811
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'slow.sqlite'}", sim)
        world.feed(candles, 0, 3)  # the bot's deal is open, its orders rest
        reconciler = Reconciler(world.runner)
        sim.timeout(seconds=HOLD, execute=True, method="GET", path="/api/v3/account")
        done = threading.Thread(target=reconciler.run, args=(T0,), daemon=True)
        done.start()
        deadline = time.monotonic() + 30
        while sim.server.faults.armed():  # the reconciliation's request is being held
            assert time.monotonic() < deadline, "the reconciliation never asked"
            time.sleep(0.01)
        world.feed(candles, 3, 3 + STEPS)  # each step asks the exchange about its orders
        # every candle stepped while the exchange still holds the reconciliation (today:
        # the first step waits for the runner's lock until the exchange answers)
        assert done.is_alive(), "the trading steps waited for the reconciliation"
        done.join(30)
        assert not done.is_alive()
        assert reconciler.accounts[str(world.account)].error is None
        assert reconciler.health()[0] == "green"
        assert world.events("BalanceObserved")
        assert not world.events("StrayOrderFound", "DriftDetected")
        reconciler.run(T0 + timedelta(minutes=1))  # nothing changed: nothing again
        observed = len(world.events("BalanceObserved"))
        reconciler.run(T0 + timedelta(minutes=2))
        assert len(world.events("BalanceObserved")) == observed
        world.trading.close()
