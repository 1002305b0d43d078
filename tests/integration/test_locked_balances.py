"""Once no order rests, nothing stays locked: exactly zero, on the paper venue and in the
balances view, however many 28-digit locks were added and taken away on the way. (A DCA
order's amount is ``quote / price`` to 28 digits, so its lock ``price × amount`` has 28
digits too and sums of them round; the end-to-end journey once ended with 1E-26 USDT locked
and no order open.) What rounding leaves belongs to the free balance: free + locked is kept."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from domain.orders import Order, OrderPurpose, OrderSide, OrderStatus, OrderType
from domain.ports import OrderRequest
from projections.balances import Balances, balances_report
from projections.rebuild import rebuild
from tests.integration.conftest import T0
from tests.projection_stubs import catch_up, dump, view_store

PAIR = "BTC/USDT"
START = Decimal("100000")
CLOSE_ENOUGH = Decimal("1e-18")  # a 100,000 USDT balance keeps 23 decimals

# (quote in cents, price in cents, fills: True, or is cancelled: False)
ladders = st.lists(
    st.tuples(st.integers(1_000, 800_000), st.integers(100_000, 9_000_000), st.booleans()),
    min_size=1, max_size=12)


def dca_amount(cents: int, price: Decimal) -> Decimal:
    return (Decimal(cents) / 100) / price


@settings(max_examples=200, deadline=None)
@given(ladders, ladders)
def test_the_paper_venue_locks_nothing_once_its_orders_are_done(buys, sells):
    venue = PaperExchange(PAIR, quote_balance=START)
    venue.move_to(Decimal("100000"))  # above every buy
    spent, bought = Decimal(0), Decimal(0)
    resting = []
    for n, (cents, price_cents, fills) in enumerate(buys):
        price = Decimal(price_cents) / 100
        placed = venue.create_order(OrderRequest(f"b{n}", PAIR, OrderSide.BUY, OrderType.LIMIT,
                                                 dca_amount(cents, price), price))
        assert placed.status is OrderStatus.ACCEPTED
        resting.append((placed.exchange_order_id, fills))
    for exchange_id, fills in resting:
        if not fills:
            venue.cancel_order(exchange_id, PAIR)
    venue.move_to(Decimal("0.01"))  # fills every buy still resting
    for exchange_id, fills in resting:
        order = venue.fetch_order(exchange_id, PAIR)
        assert order.status is (OrderStatus.FILLED if fills else OrderStatus.CANCELLED)
        for trade in order.trades:
            spent += trade.price * trade.amount + trade.fee
            bought += trade.amount
    balance = venue.fetch_balance()
    assert balance["USDT"].locked == 0
    assert abs(balance["USDT"].free - (START - spent)) < CLOSE_ENOUGH

    # Sell what was bought in pieces of the same 28-digit kind, some cancelled.
    resting.clear()
    left = bought
    for n, (cents, price_cents, fills) in enumerate(sells):
        amount = min(left, dca_amount(cents, Decimal(price_cents) / 100))
        if amount <= 0:
            break
        left -= amount
        placed = venue.create_order(OrderRequest(f"s{n}", PAIR, OrderSide.SELL, OrderType.LIMIT,
                                                 amount, Decimal("200000")))
        resting.append((placed.exchange_order_id, fills))
    for exchange_id, fills in resting:
        if not fills:
            venue.cancel_order(exchange_id, PAIR)
    venue.move_to(Decimal("300000"))
    sold = sum((trade.amount for exchange_id, _ in resting
                for trade in venue.fetch_order(exchange_id, PAIR).trades), Decimal(0))
    balance = venue.fetch_balance()
    assert balance["BTC"].locked == 0 and balance["USDT"].locked == 0
    assert abs(balance["BTC"].free - (bought - sold)) < CLOSE_ENOUGH


@settings(max_examples=40, deadline=None)
@given(ladders, st.data())
def test_the_balances_view_locks_nothing_once_the_orders_are_final(orders, data):
    app = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("locks"))
    store = view_store("memory")
    try:
        account = app.open_account(owner_id="carol", exchange="binance", quote_asset="USDT")
        app.deposit(account, "USDT", START, actor="carol")
        spent = Decimal(0)
        placed = []
        for n, (cents, price_cents, fills) in enumerate(orders):
            price = Decimal(price_cents) / 100
            order = Order.submit(
                app.ids.new_id(), app.cause("carol"), client_order_id=f"o{n}", owner_id="carol",
                exchange_account_id=str(account), pair=PAIR, side=OrderSide.BUY,
                type=OrderType.LIMIT, amount=dca_amount(cents, price), price=price,
                purpose=OrderPurpose.MANUAL)
            order.accept(app.cause("engine"), f"ex-{n}")
            app.save_all(order)
            placed.append((order, fills))
        # A runner may stop anywhere in between: the next one starts from the tables.
        cut = data.draw(st.integers(1, app.recorder.max_notification_id()), label="cut")
        catch_up(app, store, [Balances], batch_size=data.draw(st.integers(1, 30)))
        for order, fills in placed:
            cause = app.cause("engine")
            if fills:
                fee = order.amount * order.price / 1000
                order.fill(cause, trade_id=f"t-{order.client_order_id}", price=order.price,
                           amount=order.amount, fee=fee, fee_currency="USDT")
                spent += order.amount * order.price + fee
            else:
                order.request_cancel(cause)
                order.cancel(cause, "cancelled by the user")
            app.save_all(order)
            if app.recorder.max_notification_id() >= cut:
                catch_up(app, store, [Balances], batch_size=7)
        catch_up(app, store, [Balances])

        usdt = next(r for r in balances_report(store, owner="carol") if r["asset"] == "USDT")
        assert usdt["locked"] == 0
        assert abs(usdt["free"] - (START - spent)) < CLOSE_ENOUGH
        assert usdt["total"] == usdt["free"]
        incremental = dump(store, [Balances])
        rebuild(app, store, [Balances])
        assert dump(store, [Balances]) == incremental
    finally:
        store.close()
        app.close()
