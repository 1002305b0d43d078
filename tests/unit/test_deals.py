"""A deal's position, targets and profit come from its fills, and from its events alone."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.deals import CloseReason, Deal, DealStatus
from domain.errors import DomainError, FloatMoneyError, InvalidTransitionError
from tests.stubs import ORDER_ID, SELL_ORDER_ID, a_cause, a_deal, at, replay, state_of

D = Decimal


def buy(deal: Deal, price: str, amount: str, fee: str, safety_order: int = 0, minute: int = 1):
    deal.record_buy(
        a_cause(minute),
        order_id=ORDER_ID,
        safety_order=safety_order,
        price=D(price),
        amount=D(amount),
        fee=D(fee),
    )


def close(deal: Deal, price: str, amount: str, fee: str, reason=CloseReason.TAKE_PROFIT):
    deal.close(
        a_cause(60),
        reason=reason,
        order_id=SELL_ORDER_ID,
        price=D(price),
        amount=D(amount),
        fee=D(fee),
    )


def a_deal_after_base_and_safety() -> Deal:
    deal = a_deal(take_profit_pct=D(2), stop_loss_pct=D(10))
    buy(deal, "30000", "0.001", "0.03", safety_order=0, minute=1)
    buy(deal, "29000", "0.002", "0.058", safety_order=1, minute=2)
    return deal


# --- position after buys --------------------------------------------------------------------


def test_new_deal_is_open_with_nothing_bought() -> None:
    deal = a_deal()

    assert (deal.status, deal.units, deal.cost, deal.fees) == (DealStatus.OPEN, 0, 0, 0)
    assert (deal.average_entry, deal.take_profit_price, deal.stop_loss_price) == (None,) * 3
    assert deal.opened_at == at(0)


def test_base_order_fill_sets_position_and_targets() -> None:
    deal = a_deal(take_profit_pct=D(2), stop_loss_pct=D(10))

    buy(deal, "30000", "0.001", "0.03")

    assert (deal.units, deal.cost, deal.fees, deal.average_entry) == (
        D("0.001"),
        D("30"),
        D("0.03"),
        D("30000"),
    )
    assert (deal.take_profit_price, deal.stop_loss_price) == (D("30600"), D("27000"))


def test_safety_order_fill_lowers_average_and_take_profit() -> None:
    deal = a_deal_after_base_and_safety()

    assert (deal.units, deal.cost, deal.buy_fees) == (D("0.003"), D("88"), D("0.088"))
    assert deal.average_entry == D(88) / D("0.003")  # 29333.33…
    assert deal.take_profit_price == D(88) / D("0.003") * D("1.02")  # 29920
    assert deal.stop_loss_price == D(88) / D("0.003") * D("0.90")  # 26400
    assert deal.safety_orders_used == 1


def test_the_entry_price_is_the_base_orders_and_safety_orders_do_not_move_it() -> None:
    deal = a_deal_after_base_and_safety()

    assert deal.entry_price == D("30000")
    assert deal.average_entry < deal.entry_price


def test_a_base_order_filled_in_parts_entered_at_their_average_price() -> None:
    deal = a_deal()
    buy(deal, "30000", "0.001", "0.03")
    buy(deal, "30300", "0.002", "0.0606")

    assert deal.entry_price == (D(30) + D("60.6")) / D("0.003")  # 30200
    assert replay(deal.pending_events).entry_price == deal.entry_price  # from events alone


def test_every_buy_moves_the_targets_right_after_it() -> None:
    deal = a_deal_after_base_and_safety()

    assert [type(e).__name__ for e in deal.pending_events] == [
        "Opened",
        "BuyFilled",
        "TargetsMoved",
        "BuyFilled",
        "TargetsMoved",
    ]
    moves = [e for e in deal.pending_events if isinstance(e, Deal.TargetsMoved)]
    assert moves[0].take_profit_price > moves[1].take_profit_price


def test_deal_without_stop_loss_has_no_stop_price() -> None:
    deal = a_deal(stop_loss_pct=None)

    buy(deal, "30000", "0.001", "0")

    assert deal.stop_loss_price is None


@pytest.mark.parametrize(
    ("price", "amount", "fee"),
    [("0", "0.001", "0"), ("30000", "0", "0"), ("30000", "-0.001", "0"), ("30000", "1", "-1")],
)
def test_buy_with_non_positive_price_amount_or_negative_fee_is_refused(
    price: str, amount: str, fee: str
) -> None:
    deal = a_deal()

    with pytest.raises(DomainError) as caught:
        buy(deal, price, amount, fee)

    assert caught.value.code == "INVALID_FILL"
    assert len(deal.pending_events) == 1


def test_buy_with_a_float_price_is_refused_by_name() -> None:
    with pytest.raises(FloatMoneyError) as caught:
        a_deal().record_buy(
            a_cause(1), order_id=ORDER_ID, safety_order=0, price=30000.0, amount=D(1), fee=D(0)
        )

    assert caught.value.field == "price"


def test_unrealized_pnl_counts_buy_fees_already_paid() -> None:
    deal = a_deal_after_base_and_safety()

    assert deal.unrealized_pnl(D("30000")) == D("90") - D("88") - D("0.088")


# --- closing --------------------------------------------------------------------------------


def test_close_realizes_proceeds_minus_cost_minus_all_fees() -> None:
    deal = a_deal_after_base_and_safety()

    close(deal, "29920", "0.003", "0.09")

    assert deal.status is DealStatus.CLOSED
    assert deal.realized_pnl == D("89.76") - D("88") - D("0.088") - D("0.09")  # 1.582
    assert (deal.proceeds, deal.fees, deal.units) == (D("89.76"), D("0.178"), 0)
    assert (deal.close_reason, deal.exit_price, deal.closed_at) == (
        CloseReason.TAKE_PROFIT,
        D("29920"),
        at(60),
    )
    assert deal.unrealized_pnl(D("50000")) == 0


def test_close_at_stop_loss_realizes_a_loss() -> None:
    deal = a_deal_after_base_and_safety()

    close(deal, "26400", "0.003", "0.08", reason=CloseReason.STOP_LOSS)

    assert deal.realized_pnl == D("79.2") - D("88") - D("0.088") - D("0.08")
    assert deal.realized_pnl < 0


def test_close_selling_part_of_the_position_is_refused() -> None:
    deal = a_deal_after_base_and_safety()
    recorded = len(deal.pending_events)

    with pytest.raises(DomainError) as caught:
        close(deal, "29920", "0.002", "0.06")

    assert caught.value.code == "PARTIAL_EXIT"
    assert len(deal.pending_events) == recorded
    assert deal.status is DealStatus.OPEN


@pytest.mark.parametrize(("price", "fee"), [("0", "0"), ("29920", "-1")])
def test_close_with_non_positive_price_or_negative_fee_is_refused(price: str, fee: str) -> None:
    deal = a_deal_after_base_and_safety()

    with pytest.raises(DomainError) as caught:
        close(deal, price, "0.003", fee)

    assert caught.value.code == "INVALID_FILL"
    assert deal.status is DealStatus.OPEN


def test_close_of_a_deal_that_bought_nothing_is_refused() -> None:
    deal = a_deal()

    with pytest.raises(DomainError) as caught:
        close(deal, "30000", "0", "0")

    assert caught.value.code == "INVALID_FILL"
    assert deal.status is DealStatus.OPEN


def test_closed_deal_refuses_more_buys() -> None:
    deal = a_deal_after_base_and_safety()
    close(deal, "29920", "0.003", "0.09")

    with pytest.raises(InvalidTransitionError) as caught:
        buy(deal, "25000", "0.004", "0.1", safety_order=2)

    assert caught.value.code == "DEAL_NOT_OPEN"
    assert deal.units == 0


# --- cancelling -----------------------------------------------------------------------------


def test_deal_that_bought_nothing_can_be_cancelled() -> None:
    deal = a_deal()

    deal.cancel(a_cause(3), "base order rejected: insufficient balance")

    assert (deal.status, deal.closed_at, deal.realized_pnl) == (DealStatus.CANCELLED, at(3), None)


def test_deal_holding_units_cancel_raises_holds_units() -> None:
    deal = a_deal_after_base_and_safety()

    with pytest.raises(InvalidTransitionError) as caught:
        deal.cancel(a_cause(3), "changed my mind")

    assert caught.value.code == "DEAL_HOLDS_UNITS"
    assert deal.status is DealStatus.OPEN


def test_cancelled_deal_refuses_buys_and_a_second_cancel() -> None:
    deal = a_deal()
    deal.cancel(a_cause(3), "base order rejected")

    for command in (lambda: buy(deal, "1", "1", "0"), lambda: deal.cancel(a_cause(4), "again")):
        with pytest.raises(InvalidTransitionError) as caught:
            command()
        assert caught.value.code == "DEAL_NOT_OPEN"
    assert len(deal.pending_events) == 2


# --- hypothesis: replay and averages --------------------------------------------------------

fills = st.lists(
    st.tuples(
        st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8),
        st.decimals(min_value=D("0.00000001"), max_value=D("1000"), places=8),
        st.decimals(min_value=D(0), max_value=D("10"), places=8),
    ),
    min_size=1,
    max_size=12,
)
percentages = st.decimals(min_value=D("0.1"), max_value=D("50"), places=2)


def a_deal_with(fills_: list[tuple[Decimal, Decimal, Decimal]], tp: Decimal, sl) -> Deal:
    deal = a_deal(take_profit_pct=tp, stop_loss_pct=sl)
    for n, (price, amount, fee) in enumerate(fills_):
        deal.record_buy(
            a_cause(n + 1), order_id=ORDER_ID, safety_order=n, price=price, amount=amount, fee=fee
        )
    return deal


@given(fills, percentages, st.none() | percentages, st.booleans())
@settings(deadline=None)
def test_deal_rebuilt_from_its_events_equals_the_deal(
    fills_, tp: Decimal, sl: Decimal | None, closed: bool
) -> None:
    deal = a_deal_with(fills_, tp, sl)
    if closed:
        close(deal, "123.45", str(deal.units), "0.5")

    assert state_of(replay(deal.pending_events)) == state_of(deal)


@given(fills, percentages, st.none() | percentages)
def test_deal_average_entry_lies_between_lowest_and_highest_fill(
    fills_, tp: Decimal, sl: Decimal | None
) -> None:
    deal = a_deal_with(fills_, tp, sl)
    fill_prices = [price for price, _, _ in fills_]
    wobble = D("1e-20")  # Decimal divides to 28 digits

    assert min(fill_prices) * (1 - wobble) <= deal.average_entry <= max(fill_prices) * (1 + wobble)
    assert deal.take_profit_price > deal.average_entry
    if sl is not None:
        assert deal.stop_loss_price < deal.average_entry


@given(fills, st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2))
def test_deal_closed_pnl_is_proceeds_minus_cost_minus_fees(fills_, exit_price: Decimal) -> None:
    deal = a_deal_with(fills_, D(2), None)
    units = sum(amount for _, amount, _ in fills_)
    cost = sum(price * amount for price, amount, _ in fills_)
    buy_fees = sum(fee for _, _, fee in fills_)

    close(deal, str(exit_price), str(units), "1")

    assert deal.realized_pnl == exit_price * units - cost - buy_fees - 1
