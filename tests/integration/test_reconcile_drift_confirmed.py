"""Drift is reported when it is seen again a round later, not for a race. A sell the
exchange filled that the log the reconciliation reads has not recorded yet shows as a
shortfall for one round: that round reports nothing (``/health`` lists it as
``drift_unconfirmed``, the account green), and once the log has the sell the shortfall is
gone without a ``DriftDetected``. BTC really gone from the exchange is reported at the
second round, once. On SQLite and PostgreSQL, through the real ccxt client against the
local exchange simulator; rounds a minute apart, as the schedule runs them."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import pytest

from application.account_holdings import AccountHoldings
from application.reconciliation import Reconciler
from tests.exchange_simulator import running_simulator
from tests.integration.test_live_trading import BOT, LiveWorld, candles  # noqa: F401

pytestmark = pytest.mark.timeout(180)
MINUTE = timedelta(minutes=1)


def units(world: LiveWorld) -> Decimal:
    deal = world.runner.engines_of(str(world.account))[0].deal
    return deal.units if deal is not None else Decimal(0)


def until_a_deal_holds(world: LiveWorld, candles, i: int = 0) -> int:  # noqa: F811
    while not units(world):
        world.feed(candles, i, i + 1)
        i += 1
    return i


def test_a_sell_not_yet_logged_is_no_drift(persistent_store_url, candles):  # noqa: F811
    with running_simulator(speed=0) as sim:
        # (no new deal right after the take profit: the BTC leaves the account)
        world = LiveWorld(persistent_store_url, sim, seed="race",
                          config={**BOT, "cooldown_seconds": 3600})
        account = str(world.account)
        i = until_a_deal_holds(world, candles)
        holdings = AccountHoldings(world.trading)
        reconciler = Reconciler(world.runner, holdings=holdings)
        at = world.clock.now()
        try:
            reconciler.run(at)
            assert reconciler.accounts[account].status == "ok"
            closed = len(world.events("Closed"))
            while len(world.events("Closed")) == closed:  # the take profit sells on the
                world.feed(candles, i, i + 1)  # exchange; the log reading it lags behind:
                i += 1
            catch_up, holdings.catch_up = holdings.catch_up, lambda: 0
            reconciler.run(at + MINUTE)  # the exchange without the deal's BTC already
            status, detail = reconciler.health()
            check = detail["accounts"][account]
            assert (status, check["status"], check["drift"]) == ("green", "ok", {})
            assert list(check["drift_unconfirmed"]) == ["BTC"]
            assert not world.events("DriftDetected")  # nobody paged for a race

            holdings.catch_up = catch_up  # the log has the sell now
            reconciler.run(at + 2 * MINUTE)
            reconciler.run(at + 3 * MINUTE)
            assert not world.events("DriftDetected")
            status, detail = reconciler.health()
            assert status == "green" and detail["accounts"][account]["drift_unconfirmed"] == {}
        finally:
            world.trading.close()


def test_btc_really_gone_is_drift_at_the_second_round(persistent_store_url,
                                                      candles):  # noqa: F811
    with running_simulator(speed=0) as sim:
        world = LiveWorld(persistent_store_url, sim, seed="gone")
        account = str(world.account)
        until_a_deal_holds(world, candles)
        held = units(world)
        reconciler = Reconciler(world.runner)
        at = world.clock.now()
        try:
            reconciler.run(at)
            client = world.runner.live_markets()[0][2].exchange.client
            client.create_order("BTC/USDT", "market", "sell",  # sold outside Tradetape
                                str(held.quantize(Decimal("0.00001"), rounding=ROUND_DOWN)))
            reconciler.run(at + MINUTE)
            assert not world.events("DriftDetected")
            assert reconciler.health()[0] == "green"
            reconciler.run(at + 2 * MINUTE)  # still short a round later: drift
            drift = world.events("DriftDetected")
            assert [(e.asset, e.expected) for e in drift] == [("BTC", held)]
            assert drift[0].observed < held / 2
            status, detail = reconciler.health()
            check = detail["accounts"][account]
            assert (status, check["status"], check["drift_unconfirmed"]) == (
                "amber", "drift", {})
            reconciler.run(at + 3 * MINUTE)
            assert len(world.events("DriftDetected")) == 1  # reported once
        finally:
            world.trading.close()
