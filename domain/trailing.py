"""Trailing stop maths and OCO price rules: pure functions over Decimals.

A sell stop (an exit) follows the highest price seen and triggers on a fall to
``highest × (1 − pct/100)`` or ``highest − amount``; a buy stop (an entry) follows the lowest
and triggers on a rise to ``lowest × (1 + pct/100)`` or ``lowest + amount``. The extreme only
ever moves the favourable way, so neither level ever moves against its owner.
"""

from __future__ import annotations

from decimal import Decimal

from domain.errors import DomainError
from domain.money import HUNDRED, ZERO
from domain.orders import OrderSide


def next_extreme(side: OrderSide, extreme: Decimal, price: Decimal) -> Decimal:
    """The extreme after the market traded at ``price``: a sell stop keeps the highest,
    a buy stop the lowest."""
    if side is OrderSide.SELL:
        return price if price > extreme else extreme
    return price if price < extreme else extreme


def trail_level(side: OrderSide, extreme: Decimal, pct: Decimal | None,
                amount: Decimal | None) -> Decimal:
    """The stop price ``extreme`` gives: below it for a sell stop, above for a buy stop."""
    distance = extreme * pct / HUNDRED if pct is not None else amount
    return extreme - distance if side is OrderSide.SELL else extreme + distance


def triggered(side: OrderSide, level: Decimal, price: Decimal) -> bool:
    """A sell stop fires when the price falls to its level, a buy stop when it rises to it."""
    return price <= level if side is OrderSide.SELL else price >= level


def activated(side: OrderSide, activation: Decimal | None, price: Decimal) -> bool:
    """Trailing starts once the price reaches the activation price (up for a sell stop,
    down for a buy stop); without one it starts at once."""
    if activation is None:
        return True
    return price >= activation if side is OrderSide.SELL else price <= activation


def check_trail(pct: Decimal | None, amount: Decimal | None, reference: Decimal) -> None:
    """Exactly one of ``trailPercent`` (0 < p < 100) and ``trailAmount`` (0 < a < the
    current price, so the first level is a price)."""
    if (pct is None) == (amount is None):
        raise DomainError("give exactly one of trailPercent and trailAmount",
                          code="TRAIL_REQUIRED", field="trail_percent")
    if pct is not None and not ZERO < pct < HUNDRED:
        raise DomainError("must be above 0 and below 100", code="OUT_OF_RANGE",
                          field="trail_percent")
    if amount is not None and not ZERO < amount < reference:
        raise DomainError(f"must be above 0 and below the current price {reference}",
                          code="OUT_OF_RANGE", field="trail_amount")


def check_oco_prices(take_profit: Decimal, stop: Decimal, stop_limit: Decimal | None,
                     current: Decimal) -> None:
    """A sell OCO: the take profit above the current price, the stop below it, and a stop
    limit (when given) at or below the stop."""
    problems = []
    if take_profit <= current:
        problems.append(f"the take profit {take_profit} must be above the current price "
                        f"{current}")
    if stop >= current:
        problems.append(f"the stop {stop} must be below the current price {current}")
    if stop_limit is not None and stop_limit > stop:
        problems.append(f"the stop limit {stop_limit} must be at or below the stop {stop}")
    if problems:
        raise DomainError("; ".join(problems), code="OCO_PRICES_ILLOGICAL",
                          field="take_profit_price" if take_profit <= current
                          else "stop_price")
