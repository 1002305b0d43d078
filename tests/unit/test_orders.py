"""An order's life on an exchange: an explicit transition table, idempotent fills, no overfill."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import DomainError, InvalidTransitionError, OverfillError
from domain.orders import Order, OrderStatus, OrderType
from tests.stubs import a_cause, an_order, state_of

D = Decimal

# Which command each status allows, written here apart from the code: changing the order
# lifecycle must change this table on purpose. Fills may race an acknowledgement or a cancel.
LIVE = {"accepted", "partially_filled", "cancel_requested"}
ALLOWED: dict[str, set[str]] = {
    "accept": {"submitted"},
    "reject": {"submitted"},
    "fill": {"submitted", *LIVE},
    "request_cancel": {"submitted", "accepted", "partially_filled"},
    "cancel": {"submitted", *LIVE},
    "expire": {"submitted", *LIVE},
    "lose": {"submitted", *LIVE},
}
OUTCOME = {
    "accept": ("accepted", Order.Accepted),
    "reject": ("rejected", Order.Rejected),
    "fill": ("partially_filled", Order.Filled),  # a small fill
    "request_cancel": ("cancel_requested", Order.CancelRequested),
    "cancel": ("cancelled", Order.Cancelled),
    "expire": ("expired", Order.Expired),
    "lose": ("lost", Order.Lost),
}
COMMANDS: dict[str, Callable[[Order], object]] = {
    "accept": lambda o: o.accept(a_cause(50), "ex-1"),
    "reject": lambda o: o.reject(a_cause(50), "insufficient balance"),
    "fill": lambda o: o.fill(
        a_cause(50),
        trade_id="t-new",
        price=D(30000),
        amount=D("0.1"),
        fee=D(3),
        fee_currency="USDT",
    ),
    "request_cancel": lambda o: o.request_cancel(a_cause(50)),
    "cancel": lambda o: o.cancel(a_cause(50), "user cancelled"),
    "expire": lambda o: o.expire(a_cause(50)),
    "lose": lambda o: o.lose(a_cause(50), "the exchange does not know it"),
}
STATUSES = [s.value for s in OrderStatus]


def fill(order: Order, trade_id: str, amount: str, price: str = "30000", fee: str = "0") -> bool:
    return order.fill(
        a_cause(10),
        trade_id=trade_id,
        price=D(price),
        amount=D(amount),
        fee=D(fee),
        fee_currency="USDT",
    )


def order_in(status: str) -> Order:
    """An order of amount 1 brought to ``status`` by the commands the engine would give."""
    order = an_order(amount=D(1))
    steps: dict[str, list[Callable[[], object]]] = {
        "submitted": [],
        "accepted": [lambda: order.accept(a_cause(1), "ex-1")],
        "partially_filled": [
            lambda: order.accept(a_cause(1), "ex-1"),
            lambda: fill(order, "t-1", "0.4"),
        ],
        "filled": [lambda: order.accept(a_cause(1), "ex-1"), lambda: fill(order, "t-1", "1")],
        "cancel_requested": [
            lambda: order.accept(a_cause(1), "ex-1"),
            lambda: order.request_cancel(a_cause(2)),
        ],
        "cancelled": [lambda: order.cancel(a_cause(1), "user")],
        "rejected": [lambda: order.reject(a_cause(1), "min notional")],
        "expired": [lambda: order.accept(a_cause(1), "ex-1"), lambda: order.expire(a_cause(2))],
        "lost": [lambda: order.lose(a_cause(1), "unknown to the exchange")],
    }
    for step in steps[status]:
        step()
    assert order.status is OrderStatus(status)
    return order


# --- the transition table -------------------------------------------------------------------


def test_transition_table_covers_every_status() -> None:
    assert set(STATUSES) == {
        "submitted",
        "accepted",
        "partially_filled",
        "filled",
        "cancel_requested",
        "cancelled",
        "rejected",
        "expired",
        "lost",
    }


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_order_command_in_each_status_follows_the_table(status: str, command: str) -> None:
    order = order_in(status)
    recorded = len(order.pending_events)
    before = copy.deepcopy(state_of(order))

    if status in ALLOWED[command]:
        COMMANDS[command](order)
        new_status, event_class = OUTCOME[command]
        assert len(order.pending_events) == recorded + 1
        assert type(order.pending_events[-1]) is event_class
        assert order.status is OrderStatus(new_status)
    else:
        with pytest.raises(InvalidTransitionError) as caught:
            COMMANDS[command](order)
        assert caught.value.code == f"ORDER_{status.upper()}"
        assert len(order.pending_events) == recorded
        assert state_of(order) == before


def test_accepted_order_keeps_the_exchange_order_id() -> None:
    order = an_order()

    order.accept(a_cause(1), "binance-123")

    assert (order.status, order.exchange_order_id) == (OrderStatus.ACCEPTED, "binance-123")


@pytest.mark.parametrize("status", ["filled", "cancelled", "rejected", "expired"])
def test_terminal_order_is_no_longer_open(status: str) -> None:
    assert order_in(status).is_open is False


@pytest.mark.parametrize(
    "status", ["submitted", "accepted", "partially_filled", "cancel_requested"]
)
def test_live_order_is_open(status: str) -> None:
    assert order_in(status).is_open is True


# --- fills ----------------------------------------------------------------------------------


def test_partial_fills_then_the_rest_fill_the_order() -> None:
    order = order_in("accepted")

    fill(order, "t-1", "0.4", price="30000", fee="1.2")
    assert (order.status, order.filled, order.remaining) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.4"),
        D("0.6"),
    )

    fill(order, "t-2", "0.6", price="29500", fee="1.77")
    assert (order.status, order.filled, order.remaining) == (OrderStatus.FILLED, 1, 0)
    assert order.average_price == D("29700")
    assert order.fees == D("2.97")
    assert order.trade_ids == ["t-1", "t-2"]


def test_fill_before_acknowledgement_is_recorded() -> None:
    order = order_in("submitted")

    assert fill(order, "t-1", "1") is True
    assert order.status is OrderStatus.FILLED


def test_repeated_trade_id_is_ignored_and_records_nothing() -> None:
    order = order_in("accepted")
    assert fill(order, "t-1", "0.4") is True
    recorded = len(order.pending_events)

    assert fill(order, "t-1", "0.4") is False
    assert (order.filled, len(order.pending_events)) == (D("0.4"), recorded)


def test_repeated_trade_id_after_the_order_filled_is_ignored_without_error() -> None:
    order = order_in("filled")

    assert fill(order, "t-1", "1") is False
    assert order.status is OrderStatus.FILLED


def test_overfill_raises_order_overfill_and_records_nothing() -> None:
    order = order_in("partially_filled")  # 0.4 of 1
    recorded = len(order.pending_events)

    with pytest.raises(OverfillError) as caught:
        fill(order, "t-2", "0.61")

    assert caught.value.code == "ORDER_OVERFILL"
    assert (order.filled, order.status) == (D("0.4"), OrderStatus.PARTIALLY_FILLED)
    assert len(order.pending_events) == recorded


@pytest.mark.parametrize(
    ("price", "amount", "fee"), [("0", "0.1", "0"), ("30000", "0", "0"), ("30000", "0.1", "-1")]
)
def test_fill_with_non_positive_price_amount_or_negative_fee_is_refused(
    price: str, amount: str, fee: str
) -> None:
    order = order_in("accepted")

    with pytest.raises(DomainError) as caught:
        fill(order, "t-1", amount, price=price, fee=fee)

    assert caught.value.code == "INVALID_FILL"
    assert order.filled == 0


# --- submitting -----------------------------------------------------------------------------


@pytest.mark.parametrize("order_type", [OrderType.LIMIT, OrderType.STOP])
def test_limit_or_stop_order_without_price_raises_price_required(order_type: OrderType) -> None:
    with pytest.raises(DomainError) as caught:
        an_order(type=order_type, price=None)

    assert (caught.value.code, caught.value.field) == ("PRICE_REQUIRED", "price")


def test_market_order_without_price_is_submitted() -> None:
    order = an_order(type=OrderType.MARKET, price=None)

    assert (order.status, order.price, order.filled) == (OrderStatus.SUBMITTED, None, 0)


@pytest.mark.parametrize(
    ("amount", "price", "field"),
    [("0", "100", "amount"), ("-1", "100", "amount"), ("1", "0", "price")],
)
def test_order_with_non_positive_amount_or_price_is_refused(
    amount: str, price: str, field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        an_order(amount=D(amount), price=D(price))

    assert (caught.value.code, caught.value.field) == ("NOT_POSITIVE", field)


# --- hypothesis: any sequence of exchange reports --------------------------------------------

TERMINAL = {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}


class OrderLifecycle(RuleBasedStateMachine):
    """Random accept/fill/cancel/expire/reject/request_cancel reports, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.order = an_order(amount=D(1))
        self.trades = 0

    def _attempt(self, command: Callable[[], object]) -> None:
        """Run one command. A refused one, or any one on a finished order, changes nothing."""
        before, recorded = copy.deepcopy(state_of(self.order)), len(self.order.pending_events)
        was_terminal = self.order.status in TERMINAL
        try:
            result = command()
        except (InvalidTransitionError, OverfillError):
            result = False
        if result is False or was_terminal:
            assert state_of(self.order) == before
            assert len(self.order.pending_events) == recorded
        else:
            assert len(self.order.pending_events) == recorded + 1

    @rule()
    def accept(self) -> None:
        self._attempt(lambda: self.order.accept(a_cause(1), "ex-1"))

    @rule(amount=st.decimals(min_value=D("0.01"), max_value=D("1.2"), places=2))
    def fill_new_trade(self, amount: Decimal) -> None:
        self.trades += 1
        self._attempt(lambda: fill(self.order, f"t-{self.trades}", str(amount)))

    @precondition(lambda self: self.order.trade_ids)
    @rule(data=st.data())
    def fill_repeated_trade(self, data: st.DataObject) -> None:
        trade_id = data.draw(st.sampled_from(self.order.trade_ids))
        self._attempt(lambda: fill(self.order, trade_id, "0.01"))

    @rule()
    def request_cancel(self) -> None:
        self._attempt(lambda: self.order.request_cancel(a_cause(2)))

    @rule()
    def cancel(self) -> None:
        self._attempt(lambda: self.order.cancel(a_cause(3), "cancelled on the exchange"))

    @rule()
    def expire(self) -> None:
        self._attempt(lambda: self.order.expire(a_cause(4)))

    @rule()
    def reject(self) -> None:
        self._attempt(lambda: self.order.reject(a_cause(5), "rejected"))

    @invariant()
    def filled_never_exceeds_amount(self) -> None:
        assert 0 <= self.order.filled <= self.order.amount

    @invariant()
    def status_is_filled_exactly_when_fully_filled(self) -> None:
        assert (self.order.status is OrderStatus.FILLED) == (self.order.filled == self.order.amount)

    @invariant()
    def trade_ids_are_unique(self) -> None:
        assert len(set(self.order.trade_ids)) == len(self.order.trade_ids)


OrderLifecycle.TestCase.settings = settings(max_examples=200, stateful_step_count=20)
test_order_lifecycle = OrderLifecycle.TestCase
