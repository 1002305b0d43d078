"""What the paper venue keeps of each position (a deal): what its fills added up to, in the
order the deal adds them, so the deal's exit of everything it holds is never refused for a
last digit, and leaves nothing behind. A resting sell locks part of it only while it rests:
rested and cancelled, it used to be taken out and added back at 28 digits, which left the
position one digit off (dust kept it forever, or the exit was refused)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.exchanges.paper import PaperExchange
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import OrderRequest

PAIR, DEAL = "BTC/USDT", "deal-1"
PRICE = Decimal("97000")


def request(cid: str, side: OrderSide, amount: Decimal, price: Decimal | None = None,
            position: str | None = DEAL) -> OrderRequest:
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    return OrderRequest(cid, PAIR, side, kind, amount, price, position)


def hold_then_sell_all(buys: list[Decimal], steps: list[Decimal]):
    """Buy ``buys`` into the deal, rest a take-profit sell of each of ``steps`` and cancel
    it, then sell what the deal holds (its fills added up in order, as the deal does)."""
    venue = PaperExchange(PAIR, quote_balance=Decimal("1000000"))
    venue.move_to(PRICE)
    for n, amount in enumerate(buys):
        assert venue.create_order(request(f"b{n}", OrderSide.BUY, amount)).status is (
            OrderStatus.FILLED)
    held = sum(buys[1:], buys[0])
    for n, amount in enumerate(steps):
        rested = venue.create_order(request(f"tp{n}", OrderSide.SELL, amount, PRICE * 2))
        assert rested.status is OrderStatus.ACCEPTED
        venue.cancel_order(rested.exchange_order_id, PAIR)
    return venue, venue.create_order(request("exit", OrderSide.SELL, held))


def test_an_exit_after_a_cancelled_take_profit_sells_all_and_forgets_the_position():
    # 100 and 150 USDT bought at two prices; a take profit of 6% of it rested, cancelled
    buys = [Decimal("0.0009398761243268137259509196688"),
            Decimal("0.001837064615686082398471562240")]
    venue, exit_ = hold_then_sell_all(buys, [Decimal("0.0001666164444007737674653489145")])
    assert exit_.status is OrderStatus.FILLED, exit_.reason  # was: insufficient funds
    assert venue.positions_kept() == 0


def test_no_dust_is_kept_of_a_position_sold_out_after_a_cancelled_sell():
    buys = [Decimal("0.0009166490975589634532004803241"),
            Decimal("0.001753647586980920314253647587")]
    venue, exit_ = hold_then_sell_all(buys, [Decimal("0.0006141682374441732665144494195")])
    assert exit_.status is OrderStatus.FILLED
    assert venue.positions_kept() == 0  # was: 1E-30 of it kept for ever


def test_a_resting_sell_locks_its_part_of_the_position_while_it_rests():
    venue = PaperExchange(PAIR, quote_balance=Decimal("1000000"))
    venue.move_to(PRICE)
    venue.create_order(request("b", OrderSide.BUY, Decimal("0.003")))
    venue.create_order(request("tp", OrderSide.SELL, Decimal("0.002"), PRICE * 2))
    refused = venue.create_order(request("more", OrderSide.SELL, Decimal("0.0011")))
    assert refused.status is OrderStatus.REJECTED
    assert refused.reason == "insufficient funds: needs 0.0011 BTC, 0.001 free"
    assert venue.create_order(request("rest", OrderSide.SELL, Decimal("0.001"))).status is (
        OrderStatus.FILLED)
    venue.move_to(PRICE * 2)  # the take profit fills: the position is sold out
    assert venue.positions_kept() == 0


quotes = st.decimals(min_value=Decimal("5"), max_value=Decimal("5000"), places=2)
prices = st.decimals(min_value=Decimal("1000"), max_value=Decimal("150000"), places=2)


@settings(max_examples=200, deadline=None)
@given(buys=st.lists(st.tuples(quotes, prices), min_size=1, max_size=4),
       shares=st.lists(st.integers(1, 99), max_size=3))
def test_whatever_rested_and_was_cancelled_the_exit_sells_all_the_deal_holds(buys, shares):
    amounts = [quote / price for quote, price in buys]  # 28 digits, as the engine sizes them
    held = sum(amounts[1:], amounts[0])
    venue, exit_ = hold_then_sell_all(amounts, [held * share / 100 for share in shares])
    assert exit_.status is OrderStatus.FILLED, exit_.reason
    assert venue.positions_kept() == 0
