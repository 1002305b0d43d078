"""What a check counts of a position's live market entry and of a deal's base order, not
filled, filled in part, then final (SQLite and PostgreSQL): the part left at the price it
was judged at (the base order's quote x the part left) while the order may fill, the
part bought once it is final. And an order once found final is not read again by the
checks after it (``application/exposure_orders.py``; before, a live market entry's order
was read at every check while its position was open, and every open deal's base order at
every check from the log)."""

from __future__ import annotations

from decimal import Decimal

from application.logged_exposure import logged_exposure
from domain.orders import Order, OrderPurpose, OrderSide, OrderType
from domain.positions import Position
from domain.risk import Exposure
from tests.integration.test_risk_committed_buys import deal_opened, world_with_positions
from tests.integration.test_risk_limits import BOT, World


def orders_read(trading) -> list[int]:
    """How many orders each ``load_many`` of orders asked for, from now on."""
    asked: list[int] = []
    load_many = trading.load_many

    def counting(ids, kind):
        ids = list(ids)
        if kind is Order:
            asked.append(len(ids))
        return load_many(ids, kind)

    trading.load_many = counting
    return asked


def market_entry(world: World, account: str):
    """User u1's position entered at market on a live venue: 0.002 judged at 90,000,
    accepted, nothing filled yet (as ``PositionDesk.place`` records it)."""
    cause = world.trading.cause("u1")
    position = Position.open(world.ids.new_id(), cause, owner_id="u1",
                             exchange_account_id=account, pair="BTC/USDT", entry="market")
    order = Order.submit(world.ids.new_id(), cause, client_order_id="entry-1", owner_id="u1",
                         exchange_account_id=account, pair="BTC/USDT", side=OrderSide.BUY,
                         type=OrderType.MARKET, amount=Decimal("0.002"))
    position.order_placed(cause, order_id=order.id, exit_id=None, leg="entry",
                          judged_price=Decimal("90000"))
    order.accept(cause, "x-entry")
    world.trading.save_all(position, order)
    return position, order, cause


def test_a_live_market_entry_counts_the_part_left_until_it_is_final(persistent_store_url):
    """Not filled: 0.002 x 90,000 = 180. 0.0005 filled at 89,000 (44.5): 44.5 + the
    0.0015 left x 90,000 (135) = 179.5. The rest cancelled: 44.5, at every check after."""
    world, positions, account = world_with_positions(persistent_store_url)
    position, order, cause = market_entry(world, account)
    assert positions.exposure_of("u1") == Exposure(0, Decimal("180"))
    order.fill(cause, trade_id="t1", price=Decimal("89000"), amount=Decimal("0.0005"),
               fee=Decimal("0"), fee_currency="USDT")
    position.record_buy(cause, order_id=order.id, price=Decimal("89000"),
                        amount=Decimal("0.0005"), fee=Decimal("0"))
    world.trading.save_all(position, order)
    assert positions.exposure_of("u1") == Exposure(0, Decimal("179.5"))
    order.request_cancel(cause)
    order.cancel(cause, "cancelled")
    world.trading.save_all(order)
    assert positions.exposure_of("u1") == Exposure(0, Decimal("44.5"))
    assert positions.exposure_of("u1") == Exposure(0, Decimal("44.5"))
    world.trading.close()


def test_a_filled_market_entry_is_not_read_again(persistent_store_url):
    """Filled whole (0.002 at 91,000: 182), the entry's order is read by the first check
    that finds it filled, and by none after it (each read it before: an order a check for
    each of a user's positions entered live)."""
    world, positions, account = world_with_positions(persistent_store_url)
    position, order, cause = market_entry(world, account)
    order.fill(cause, trade_id="t1", price=Decimal("91000"), amount=Decimal("0.002"),
               fee=Decimal("0"), fee_currency="USDT")
    position.record_buy(cause, order_id=order.id, price=Decimal("91000"),
                        amount=Decimal("0.002"), fee=Decimal("0"))
    world.trading.save_all(position, order)
    asked = orders_read(world.trading)
    assert positions.exposure_of("u1") == Exposure(0, Decimal("182"))
    assert asked == [1]
    assert positions.exposure_of("u1") == Exposure(0, Decimal("182"))
    assert positions.exposure_of("u1") == Exposure(0, Decimal("182"))
    assert asked == [1]
    world.trading.close()


def base_order(world: World, bot, deal, cause) -> Order:
    """The deal's market base order (100 of quote, 0.002 sized at 50,000), accepted."""
    base = Order.submit(world.ids.new_id(), cause, client_order_id="base-1", owner_id="u1",
                        exchange_account_id=bot.exchange_account_id, pair="BTC/USDT",
                        side=OrderSide.BUY, type=OrderType.MARKET, amount=Decimal("0.002"),
                        purpose=OrderPurpose.BASE, bot_id=bot.id, deal_id=deal.id)
    base.accept(cause, "x-1")
    return base


def bought(base: Order, deal, cause, price: str, amount: str) -> None:
    base.fill(cause, trade_id=f"t-{price}", price=Decimal(price), amount=Decimal(amount),
              fee=Decimal("0"), fee_currency="USDT")
    deal.record_buy(cause, order_id=base.id, safety_order=0, price=Decimal(price),
                    amount=Decimal(amount), fee=Decimal("0"))


def test_a_base_order_cancelled_after_part_filled_counts_the_part_bought_in_the_log(
        persistent_store_url):
    """The deal of ``test_a_base_order_filled_in_part_counts_the_part_left_in_the_log``
    (0.0005 of 0.002 bought at 48,000: 24 + 75 left + 125 of safety orders = 224); the
    rest of the base order cancelled: 24 + 125 = 149, at every check after."""
    world = World(persistent_store_url, configs=(BOT,))
    bot, deal, cause = deal_opened(world)
    base = base_order(world, bot, deal, cause)
    bought(base, deal, cause, "48000", "0.0005")
    world.trading.save_all(bot, deal, base)
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("224"))
    base.request_cancel(cause)
    base.cancel(cause, "cancelled")
    world.trading.save_all(base)
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("149"))
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("149"))
    world.trading.close()


def test_a_filled_base_order_is_not_read_again_in_the_log(persistent_store_url):
    """Filled whole (0.002 at 50,000: 100, with 125 of safety orders: 225): read by the
    first check that finds it filled, by none after it (each read it before)."""
    world = World(persistent_store_url, configs=(BOT,))
    bot, deal, cause = deal_opened(world)
    base = base_order(world, bot, deal, cause)
    bought(base, deal, cause, "50000", "0.002")
    world.trading.save_all(bot, deal, base)
    asked = orders_read(world.trading)
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("225"))
    assert logged_exposure(world.trading, [bot.id]) == Exposure(1, Decimal("225"))
    assert asked == [1]
    world.trading.close()
