"""Closing a deal at market: the engine sells the deal's units at the paper venue's current
price (a MANUAL market order), the deal closes as MANUAL, resting safety orders are
cancelled, and the bot carries on (or, stopped, is let go)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.deals import CloseReason, DealStatus
from domain.errors import DomainError, InvalidTransitionError
from domain.orders import Order, OrderPurpose, OrderStatus, OrderType
from tests.integration.test_live_loop import world


def step(clock, loop, seconds: int = 1) -> None:
    clock.current += timedelta(seconds=seconds)
    loop.step()


def orders_of(trading, deal_id) -> list[Order]:
    from application.replay import read_log

    topic = f"{Order.__module__}:{Order.Submitted.__qualname__}"
    found = [trading.load(n.originator_id, Order) for n in read_log(trading, [topic])]
    return [o for o in found if o.deal_id == deal_id]


def test_close_deal_sells_the_units_at_the_current_price(tmp_path):
    clock, trading, bot_id, loop, _ = world(tmp_path)
    step(clock, loop)
    deal_id = trading.get_bot(bot_id).open_deal_id
    # No candle since the base order bought at the close: the market is still there.
    venue_price = next(e for e in trading.events.get(deal_id)
                       if type(e).__name__ == "BuyFilled").price

    closed = loop.paper.close_deal(bot_id, actor="u1")

    deal = trading.get_deal(deal_id)
    assert closed == deal_id and deal.status is DealStatus.CLOSED
    assert deal.close_reason is CloseReason.MANUAL and deal.exit_price == venue_price
    assert deal.units == Decimal(0)
    orders = orders_of(trading, deal_id)
    manual = [o for o in orders if o.purpose is OrderPurpose.MANUAL]
    assert len(manual) == 1 and manual[0].type is OrderType.MARKET
    assert manual[0].status is OrderStatus.FILLED
    assert all(not o.is_open for o in orders)  # the safety orders were cancelled
    assert trading.get_bot(bot_id).open_deal_id is None
    events = list(trading.events.get(deal_id))
    assert events[-1].actor == "u1"
    step(clock, loop)  # still running: the next close opens a new deal
    assert trading.get_bot(bot_id).open_deal_id not in (None, deal_id)


def test_close_deal_without_an_open_deal_is_refused(tmp_path):
    _clock, _trading, bot_id, loop, _ = world(tmp_path)
    with pytest.raises(InvalidTransitionError) as refused:
        loop.paper.close_deal(bot_id)
    assert refused.value.code == "DEAL_NOT_OPEN"


def test_a_stopped_bots_engine_is_let_go_once_its_deal_is_closed(tmp_path):
    clock, trading, bot_id, loop, _ = world(tmp_path)
    step(clock, loop)
    deal_id = trading.get_bot(bot_id).open_deal_id
    trading.stop_bot(bot_id, actor="u1")
    loop.paper.close_deal(bot_id, CloseReason.EMERGENCY)
    assert bot_id not in loop.paper.bot_ids
    assert trading.get_deal(deal_id).close_reason is CloseReason.EMERGENCY


def test_a_venue_without_a_price_refuses_and_the_deal_stays_open(tmp_path):
    clock, trading, bot_id, loop, _ = world(tmp_path)
    step(clock, loop)
    deal_id = trading.get_bot(bot_id).open_deal_id
    # A restarted runner: engines rebuilt from events, the venue has seen no candle yet.
    from adapters.exchanges.paper import PaperExchange
    from application.paper_trading import PaperTrading

    restarted = PaperTrading(trading, trading.ids, lambda pair, q, b: PaperExchange(
        pair, quote_balance=q, base_balance=b))
    restarted.resume()
    with pytest.raises(DomainError) as refused:
        restarted.close_deal(bot_id)
    assert refused.value.code == "CLOSE_REJECTED" and "no market price" in str(refused.value)
    assert trading.get_deal(deal_id).status is DealStatus.OPEN
