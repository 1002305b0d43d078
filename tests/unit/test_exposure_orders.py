"""The orders a check reads: an open one at every check (it may fill meanwhile), a final
one by the first check that finds it final only, up to ``LIMIT`` of them a ``Trading``
(then the oldest is read again, once)."""

from __future__ import annotations

from decimal import Decimal

from adapters.clock import SequentialIds
from application import exposure_orders
from application.bootstrap import open_trading
from application.exposure_orders import open_orders
from domain.orders import Order, OrderSide, OrderType


def buy(trading, n: int) -> Order:
    order = Order.submit(trading.ids.new_id(), trading.cause("u1"), client_order_id=f"c{n}",
                         owner_id="u1", exchange_account_id="a", pair="BTC/USDT",
                         side=OrderSide.BUY, type=OrderType.LIMIT, amount=Decimal("1"),
                         price=Decimal("100"))
    order.accept(trading.cause("u1"), f"x{n}")
    return order


def reads(trading) -> list[list]:
    asked: list[list] = []
    load_many = trading.load_many

    def counting(ids, kind):
        asked.append(list(ids))
        return load_many(ids, kind)

    trading.load_many = counting
    return asked


def test_an_open_order_is_read_at_every_check_a_final_one_once(monkeypatch):
    monkeypatch.setattr(exposure_orders, "LIMIT", 2)
    trading = open_trading("memory", ids=SequentialIds("orders"))
    a, b, c = (buy(trading, n) for n in range(3))
    trading.save_all(a, b, c)
    asked = reads(trading)
    assert set(open_orders(trading, [a.id, b.id])) == {a.id, b.id}
    assert set(open_orders(trading, [a.id, b.id])) == {a.id, b.id}
    assert asked == [[a.id, b.id], [a.id, b.id]]  # open: read each time
    for order in (a, b, c):
        order.cancel(trading.cause("u1"), "cancelled")
    trading.save_all(a, b, c)
    asked.clear()
    assert open_orders(trading, [a.id, b.id]) == {}
    assert open_orders(trading, [a.id, b.id]) == {}
    assert asked == [[a.id, b.id]]  # final: read once
    assert open_orders(trading, [c.id]) == {}
    assert open_orders(trading, [a.id, b.id, c.id]) == {}
    assert asked == [[a.id, b.id], [c.id], [a.id]]  # a, the oldest of 3, forgotten
    trading.close()
