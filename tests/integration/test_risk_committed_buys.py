"""maxExposureQuote counts what can still fill: a position's resting limit entry at its
limit price x the amount left, a buy trailing stop (a position's trailing entry, or one
added to an open position) at the highest price it can fire at (its level, which only moves
down), until it fills or is cancelled; what filled counts as the units held. Before, a
position counted nothing until its entry filled, and a buy trailing stop added to a
position was not checked at all: both could fill past the limit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from application.logged_exposure import logged_exposure
from application.positions import Positions, Trail
from domain.bots import Bot
from domain.deals import Deal
from domain.orders import Order, OrderPurpose, OrderSide, OrderType
from domain.positions import Position, PositionExit
from domain.recording import Cause
from domain.risk import Exposure, RiskLimitError
from tests.integration.test_risk_limits import BOT, World, candles

__all__ = ["candles"]  # (the module's candles fixture)
PRICE = Decimal("90000")
FAR_BELOW = Decimal("1000")  # a limit buy there rests through every candle of the tests


def world_with_positions(url: str, configs=(), priced: bool = True,
                         ) -> tuple[World, Positions, str]:
    """User ``u1``'s paper account, their positions wired to their limits as the runtime
    wires them (``application/runtime.py``), and a first price on the market (``priced``:
    with bots, the first candle would open their deals)."""
    world = World(url, configs=configs)
    positions = Positions(world.trading, world.runner, risk_check=world.risk.for_positions())
    world.risk.add_exposure(positions.exposure_of)
    if priced:
        world.runner.on_candle("BTC/USDT", 0, *(PRICE,) * 4, world.trading.clock.now())
    return world, positions, world.account


def opened(positions: Positions, account, **order) -> Position:
    return positions.open_position("u1", exchange_account_id=account, pair="BTC/USDT",
                                   **order)


def refused(call) -> RiskLimitError:
    with pytest.raises(RiskLimitError) as caught:
        call()
    return caught.value


def test_a_resting_limit_entry_counts_at_its_limit_price(persistent_store_url):
    world, positions, account = world_with_positions(persistent_store_url)
    world.limit(maxExposureQuote="300")
    resting = opened(positions, account, quote_amount=Decimal("200"), limit_price=FAR_BELOW)
    assert resting.units == 0  # rests: nothing bought yet
    assert world.risk.view("u1").exposure.committed_quote == Decimal("200")
    error = refused(lambda: opened(positions, account, quote_amount=Decimal("150")))
    assert error.limit == "maxExposureQuote" and "from 200" in str(error)
    assert "to 350" in str(error)
    assert len(positions.index.of("u1")) == 1  # nothing of the refused one written
    assert opened(positions, account, quote_amount=Decimal("100")).is_open  # 300 exactly
    positions.close_position("u1", resting.id)  # cancelled: what it committed is free
    assert world.risk.view("u1").exposure.committed_quote == Decimal("100")
    assert opened(positions, account, quote_amount=Decimal("150")).is_open
    world.trading.close()


def test_a_resting_position_entry_leaves_out_the_bots_safety_order_past_the_limit(
        candles, persistent_store_url):
    """A bot's deal commits 225 (100 bought, 50 and 75 resting); 100 rest in a position's
    limit entry: with the limit at 300 the deal's last safety order (75) is refused."""
    world, positions, account = world_with_positions(persistent_store_url, configs=(BOT,),
                                                    priced=False)
    world.limit(maxExposureQuote="300")
    opened(positions, account, quote_amount=Decimal("100"), limit_price=FAR_BELOW)
    world.feed(candles, 1)
    (refusal,) = world.events("Deal.RiskLimitReached")
    assert (refusal.safety_order, refusal.limit) == (2, "maxExposureQuote")
    placed = [e.safety_order for e in world.events("Order.Submitted")
              if getattr(e, "bot_id", None)]
    assert placed == [0, 1]
    world.trading.close()


def test_a_trailing_entry_counts_at_the_level_it_fires_at(persistent_store_url):
    world, positions, account = world_with_positions(persistent_store_url)
    world.limit(maxExposureQuote="300")
    units = Decimal("0.002")  # 180 at 90,000; its stop fires at 90,900 (1% up): 181.8
    opened(positions, account, amount=units, trail=Trail(percent=Decimal("1")))
    assert world.risk.view("u1").exposure.committed_quote == units * Decimal("90900")
    error = refused(lambda: opened(positions, account, quote_amount=Decimal("120")))
    assert error.limit == "maxExposureQuote" and "from 181.8" in str(error)
    world.trading.close()


def test_a_buy_trailing_stop_added_past_the_limit_is_refused_and_writes_nothing(
        persistent_store_url):
    world, positions, account = world_with_positions(persistent_store_url)
    world.limit(maxExposureQuote="300")
    position = opened(positions, account, quote_amount=Decimal("100"))
    add = Trail(percent=Decimal("1"))
    error = refused(lambda: positions.add_trailing_stop(
        "u1", position.id, side=OrderSide.BUY, trail=add, amount=Decimal("0.003")))
    assert error.limit == "maxExposureQuote"  # 100 + 0.003 x 90,900 = 372.7 > 300
    assert "to 372.7" in str(error)
    assert positions.index.exits(position.id) == []  # no exit attached
    group = positions.add_trailing_stop("u1", position.id, side=OrderSide.BUY, trail=add,
                                        amount=Decimal("0.002"))  # 281.8
    assert world.trading.load(group.id, PositionExit).is_active
    assert world.risk.view("u1").exposure.committed_quote == Decimal("100") + Decimal(
        "0.002") * Decimal("90900")
    world.trading.close()


def test_a_buy_trailing_stop_added_past_max_position_quote_is_refused(persistent_store_url):
    world, positions, account = world_with_positions(persistent_store_url)
    world.limit(maxPositionQuote="250")
    position = opened(positions, account, quote_amount=Decimal("100"))
    error = refused(lambda: positions.add_trailing_stop(
        "u1", position.id, side=OrderSide.BUY, trail=Trail(amount=Decimal("900")),
        amount=Decimal("0.002")))  # 100 + 0.002 x 90,900 = 281.8 > 250
    assert error.limit == "maxPositionQuote" and "to 281.8" in str(error)
    assert positions.index.exits(position.id) == []
    world.trading.close()


def test_a_limit_entry_that_fills_counts_once_as_the_units_it_bought(persistent_store_url):
    world, positions, account = world_with_positions(persistent_store_url)
    world.limit(maxExposureQuote="300")
    entry = Decimal("85000")
    resting = opened(positions, account, quote_amount=Decimal("200"), limit_price=entry)
    world.runner.on_candle("BTC/USDT", 60_000, PRICE, PRICE, Decimal("84000"),
                           Decimal("84000"), world.trading.clock.now())  # falls through it
    filled = world.trading.load(resting.id, Position)
    assert filled.units > 0 and filled.entry_price == entry
    assert world.risk.view("u1").exposure.committed_quote == Decimal("200")  # not 400
    assert opened(positions, account, quote_amount=Decimal("100")).is_open  # 300 exactly
    world.trading.close()


def deal_opened(world: World) -> tuple[Bot, Deal, Cause]:
    """User ``u1``'s bot's deal as an engine opens it (not saved): its base order to send."""
    [bot_id] = world.bots
    bot = world.trading.get_bot(bot_id)
    cause = world.trading.cause("engine")
    deal = Deal.open(world.ids.new_id(), cause, bot_id=bot.id, owner_id="u1",
                     exchange_account_id=bot.exchange_account_id, pair="BTC/USDT",
                     take_profit_pct=Decimal("40"), stop_loss_pct=None)
    bot.start_deal(cause, deal.id)
    return bot, deal, cause


def test_a_deal_whose_base_order_has_not_filled_counts_its_whole_plan_in_the_log(
        persistent_store_url):
    """A process that does not trade the bot (an api process, another engine worker) reads
    its deal from the log: opened, its market base order sent, no fill heard yet (a live
    exchange's answer pending). It commits the base order (100) and the safety orders that
    will rest after it (50 and 75). Before, the base order counted nothing (125)."""
    world = World(persistent_store_url, configs=(BOT,))
    bot, deal, _ = deal_opened(world)
    world.trading.save_all(bot, deal)
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("225"))
    world.trading.close()


def test_a_base_order_filled_in_part_counts_the_part_left_in_the_log(persistent_store_url):
    """The same deal read from the log, its base order (100 of quote, 0.002 sized at
    50,000) filled in part: 0.0005 at 48,000 bought (24), the 0.0015 left counts as the
    engine counts it, its quote x the part left (75), with the safety orders (50 and 75):
    224. Before, the part left counted nothing (149). Once the rest fills at 52,000 (78),
    the deal commits what it bought and its safety orders: 24 + 78 + 125 = 227."""
    world = World(persistent_store_url, configs=(BOT,))
    bot, deal, cause = deal_opened(world)
    base = Order.submit(world.ids.new_id(), cause, client_order_id="base-1", owner_id="u1",
                        exchange_account_id=bot.exchange_account_id, pair="BTC/USDT",
                        side=OrderSide.BUY, type=OrderType.MARKET, amount=Decimal("0.002"),
                        purpose=OrderPurpose.BASE, bot_id=bot.id, deal_id=deal.id)
    base.accept(cause, "x-1")

    def fills(trade_id: str, price: str, amount: str) -> None:
        base.fill(cause, trade_id=trade_id, price=Decimal(price), amount=Decimal(amount),
                  fee=Decimal("0"), fee_currency="USDT")
        deal.record_buy(cause, order_id=base.id, safety_order=0, price=Decimal(price),
                        amount=Decimal(amount), fee=Decimal("0"))

    fills("t1", "48000", "0.0005")
    world.trading.save_all(bot, deal, base)
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("224"))
    fills("t2", "52000", "0.0015")
    world.trading.save_all(deal, base)
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("227"))
    world.trading.close()
