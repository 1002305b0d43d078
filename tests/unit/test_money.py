"""Money is exact: floats are refused, and amounts round like an exchange's step size."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.errors import FloatMoneyError, InvalidNumberError
from domain.money import MarketPrecision, meets_minimums, round_amount, round_price, to_decimal

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
# Step sizes and ticks as exchanges publish them, including non-powers of ten (0.5, 0.25…).
steps = st.sampled_from(
    ["1", "0.1", "0.01", "0.00001", "0.00000001", "0.5", "0.25", "0.05", "0.002", "5", "0.3"]
).map(Decimal) | st.decimals(min_value=Decimal("1e-8"), max_value=Decimal(1000), places=8)
# Amounts as the ladder computes them: up to 28 significant digits.
amounts = st.decimals(min_value=0, max_value=Decimal("1e9"), allow_nan=False)


# --- to_decimal ---------------------------------------------------------------------------


def test_to_decimal_float_raises_float_money_error_naming_the_field() -> None:
    with pytest.raises(FloatMoneyError) as caught:
        to_decimal(0.1, "base_order_quote")

    assert caught.value.field == "base_order_quote"
    assert caught.value.code == "FLOAT_NOT_ALLOWED"
    assert "base_order_quote" in str(caught.value)


@given(st.floats())
def test_to_decimal_any_float_is_refused(value: float) -> None:
    with pytest.raises(FloatMoneyError):
        to_decimal(value, "price")


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "nan",
        "sNaN",
        "inf",
        "-Infinity",
        Decimal("NaN"),
        Decimal("-Infinity"),
        True,
        False,
        "",
        "  ",
        "abc",
        "1,5",
        "12 USDT",
        None,
        [1],
        object(),
    ],
    ids=lambda v: type(v).__name__ if type(v) is object else repr(v),
)
def test_to_decimal_non_number_raises_invalid_number_error_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidNumberError) as caught:
        to_decimal(value, "price")

    assert caught.value.field == "price"
    assert caught.value.code == "INVALID_NUMBER"


def test_to_decimal_sums_string_amounts_exactly() -> None:
    assert to_decimal("0.1") + to_decimal("0.2") == Decimal("0.3")


def test_to_decimal_keeps_a_decimal_as_is_and_trims_strings() -> None:
    exact = Decimal("0.00012345")

    assert to_decimal(exact) is exact
    assert to_decimal(" 42.50 ") == Decimal("42.50")
    assert to_decimal(-7) == Decimal(-7)


@given(finite_decimals)
def test_to_decimal_string_of_a_decimal_gives_the_same_number(value: Decimal) -> None:
    assert to_decimal(str(value)) == value


@given(st.integers())
def test_to_decimal_integer_is_exact(value: int) -> None:
    assert int(to_decimal(value)) == value


# --- rounding to an exchange's rules --------------------------------------------------------


def test_round_amount_cuts_down_to_the_step() -> None:
    btc = MarketPrecision(amount_step=Decimal("0.00001"))

    assert round_amount(Decimal("0.0036868"), btc) == Decimal("0.00368")
    assert round_amount(Decimal("0.99999999"), btc) == Decimal("0.99999")


def test_round_amount_of_28_digit_amount_with_half_step_does_not_round_up() -> None:
    # Regression: value / step used to round to 28 digits first, carrying 0.999… up to 1.
    half = MarketPrecision(amount_step=Decimal("0.5"))

    assert round_amount(Decimal("0.9999999999999999999999999999"), half) == Decimal("0.5")


def test_round_amount_without_step_keeps_the_amount() -> None:
    assert round_amount(Decimal("1.23456789"), MarketPrecision()) == Decimal("1.23456789")


@pytest.mark.parametrize("step", [Decimal(0), Decimal("-0.01")])
def test_round_amount_with_non_positive_step_raises_invalid_number_error(step: Decimal) -> None:
    with pytest.raises(InvalidNumberError) as caught:
        round_amount(Decimal(1), MarketPrecision(amount_step=step))

    assert caught.value.field == "step"


@pytest.mark.parametrize(
    ("price", "tick", "expected"),
    [
        ("27123.456", "0.01", "27123.46"),
        ("27123.454", "0.01", "27123.45"),
        ("100.125", "0.01", "100.12"),  # a tie goes to the even tick
        ("100.135", "0.01", "100.14"),
        ("101.26", "0.5", "101.5"),
        ("101.24", "0.5", "101.0"),
        ("0.7749999999999999999999999999", "0.05", "0.75"),  # not a tie, though close
    ],
)
def test_round_price_goes_to_the_nearest_tick(price: str, tick: str, expected: str) -> None:
    rounded = round_price(Decimal(price), MarketPrecision(price_tick=Decimal(tick)))

    assert rounded == Decimal(expected)


@given(amounts, steps)
@example(Decimal("0.9999999999999999999999999999"), Decimal("0.5"))
@example(Decimal("0.5999999999999999999999999999"), Decimal("0.3"))
def test_round_amount_is_a_multiple_of_the_step_at_most_one_step_below(
    amount: Decimal, step: Decimal
) -> None:
    rounded = round_amount(amount, MarketPrecision(amount_step=step))

    assert rounded <= amount
    assert amount - rounded < step
    assert rounded % step == 0


@given(amounts, steps)
def test_round_price_is_the_nearest_multiple_of_the_tick(price: Decimal, tick: Decimal) -> None:
    rounded = round_price(price, MarketPrecision(price_tick=tick))

    assert abs(price - rounded) * 2 <= tick
    assert rounded % tick == 0


@given(amounts, steps)
def test_round_amount_twice_changes_nothing(amount: Decimal, step: Decimal) -> None:
    precision = MarketPrecision(amount_step=step)
    once = round_amount(amount, precision)

    assert round_amount(once, precision) == once


# --- minimums -----------------------------------------------------------------------------

BINANCE_BTC = MarketPrecision(min_amount=Decimal("0.00001"), min_notional=Decimal("5"))


@pytest.mark.parametrize(
    ("amount", "price", "accepted"),
    [
        ("0.0002", "30000", True),  # 6 USDT
        ("0.0001", "50000", True),  # exactly the minimum notional
        ("0.0001", "49999.99", False),  # just under 5 USDT
        ("0.000009", "1000000", False),  # notional fine, amount under the minimum
        ("0.00001", "500000", True),  # exactly the minimum amount
    ],
)
def test_meets_minimums_follows_min_amount_and_min_notional(
    amount: str, price: str, accepted: bool
) -> None:
    assert meets_minimums(Decimal(amount), Decimal(price), BINANCE_BTC) is accepted


def test_meets_minimums_without_limits_accepts_any_order() -> None:
    assert meets_minimums(Decimal("0.00000001"), Decimal("0.01"), MarketPrecision()) is True
