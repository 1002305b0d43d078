"""A live venue's cancels the exchange will not carry out, through the real ccxt binance
class against the local exchange simulator: the order is fetched at every step (its fills
and its end recorded as for any other), the cancel is sent again after a backoff, and after
``CANCEL_ATTEMPTS`` the order is handed to a person in one error line; the bot trades on."""

from __future__ import annotations

import logging
import re
from collections import Counter

import pytest

from adapters.marketdata.csv_candles import load_candles
from application.live_venue import CANCEL_ATTEMPTS
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator
from tests.integration.test_live_trading import LiveWorld

REFUSED = re.compile(r"order ([0-9a-f]{32}): cancel (\d+) of \d+ not carried out "
                     r"\(CANCEL_REFUSED, EXCHANGE_ERROR\)")
ATTENTION = re.compile(r"order ([0-9a-f]{32}): .*\(ORDER_NEEDS_ATTENTION\)")


@pytest.fixture(scope="module")
def candles():
    return load_candles(str(BTC_USDT_CANDLES))


def test_an_order_whose_cancel_the_exchange_keeps_refusing_is_fetched_and_handed_over(
        tmp_path, candles, caplog):
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'refused.sqlite'}", sim)
        world.feed(candles, 0, 30)  # a deal opened, its safety orders rest
        closed_before = len(world.events("Closed"))
        sim.refuse(times=10_000)  # from now on the exchange cancels nothing
        with caplog.at_level(logging.WARNING, logger="tradetape.live"):
            world.feed(candles, 30, 400)
        lines = [r for r in caplog.records if r.name == "tradetape.live"]
        assert lines and all(r.exc_info is None for r in lines)
        refused = Counter(m[1] for r in lines if (m := REFUSED.search(r.getMessage())))
        handed = Counter(m[1] for r in lines if (m := ATTENTION.search(r.getMessage())))
        # each refused order: its cancel sent CANCEL_ATTEMPTS times over 370 candles (not at
        # every step), then one error line that asks for a person
        assert refused and set(refused.values()) == {CANCEL_ATTEMPTS - 1}
        assert handed == Counter(dict.fromkeys(refused, 1))
        assert all(r.levelno == logging.ERROR for r in lines
                   if ATTENTION.search(r.getMessage()))
        # the orders were still asked about: what the exchange filled of them after their
        # deal closed is in the log, every trade once
        observed = Counter(e.trade_id for e in world.events("TradeObserved"))
        assert observed == Counter(str(t.trade_id) for t in sim.ledger().trades)
        late = {e.originator_id for e in world.events("TradeObserved")} & {
            e.originator_id for e in world.events("CancelRequested")}
        assert late, "no order whose cancel was refused filled afterwards"
        # and the bot was not held up by them: it went on closing and opening deals
        assert len(world.events("Closed")) > closed_before + 1
        assert world.trading.get_bot(world.bot_id).status.name == "RUNNING"
        world.trading.close()
