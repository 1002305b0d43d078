"""Exact numbers for money. Every price, amount and percentage is a ``Decimal``.

Floats are refused everywhere here: ``0.1 + 0.2 != 0.3`` is not a rounding
detail when the number is somebody's balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from domain.errors import InvalidNumberError
from domain.numbers import exact_number

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


def to_decimal(value: object, field: str = "value") -> Decimal:
    """Convert an exact input (Decimal, int or numeric string) into a Decimal.

    A float raises :class:`FloatMoneyError` naming ``field``; bools, NaN, infinities, digits
    other than ASCII 0-9 and anything else that is not a number raise
    :class:`InvalidNumberError`. Input from people is bounded too: see
    :func:`domain.numbers.parse_number`.
    """
    if value.__class__ is Decimal and value.is_finite():
        return value  # (the engine's case, tens of thousands of times a backtest)
    return exact_number(value, field)


def pct_of(amount: Decimal, pct: Decimal) -> Decimal:
    return amount * pct / HUNDRED


@dataclass(frozen=True)
class MarketPrecision:
    """A market's trading rules, as exchanges publish them (ccxt ``market['limits']``).

    ``amount_step`` and ``price_tick`` are increments (e.g. ``0.00001``), ``min_notional`` the
    smallest ``amount × price`` an order may have. ``None`` means unrestricted.
    """

    amount_step: Decimal | None = None
    price_tick: Decimal | None = None
    min_amount: Decimal | None = None
    min_notional: Decimal | None = None


def round_to_step(value: Decimal, step: Decimal | None, rounding: str = ROUND_DOWN) -> Decimal:
    """Round ``value`` to a multiple of ``step``; amounts round down so we never overspend."""
    if step is None:
        return value
    if step <= 0:
        raise InvalidNumberError(f"step must be positive, got {step}", field="step")
    # Not ``value / step``: that quotient is itself rounded to 28 digits, which can carry
    # 0.99…9 of a step up to a whole one (an amount rounded *up*). ``divmod`` is exact; the
    # remainder only decides where between two multiples the value lies.
    whole, rest = divmod(value, step)
    if rest:
        side = (2 * abs(rest)).compare(step)  # -1, 0, 1: below, at, above half a step
        whole += (Decimal("0.5") + Decimal("0.25") * side).copy_sign(value)
    return whole.to_integral_value(rounding=rounding) * step


def round_price(price: Decimal, precision: MarketPrecision) -> Decimal:
    return round_to_step(price, precision.price_tick, ROUND_HALF_EVEN)


def round_amount(amount: Decimal, precision: MarketPrecision) -> Decimal:
    return round_to_step(amount, precision.amount_step, ROUND_DOWN)


def meets_minimums(amount: Decimal, price: Decimal, precision: MarketPrecision) -> bool:
    if precision.min_amount is not None and amount < precision.min_amount:
        return False
    return precision.min_notional is None or amount * price >= precision.min_notional
