"""Display forms of money: ``…Display`` fields beside the exact Decimal strings, so a client
need not round 28-digit numbers itself.

An amount is quantized to the minor unit of its currency (ROUND_HALF_EVEN, the rounding
of the Decimal defaults): cents for fiat and the dollar stablecoins, 8 decimals for other
crypto assets; a price to its quote currency's. The exact fields stay what they are; these
are for showing only, never for sums.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import strawberry

TWO_DECIMALS = frozenset({"USD", "EUR", "GBP", "CHF", "USDT", "USDC", "BUSD", "DAI", "TUSD",
                          "FDUSD", "USDP", "PYUSD"})
NO_DECIMALS = frozenset({"JPY", "KRW"})
CRYPTO_PLACES = 8


def minor_unit(asset: str | None) -> Decimal:
    code = (asset or "").upper()
    if code in TWO_DECIMALS:
        return Decimal("0.01")
    if code in NO_DECIMALS:
        return Decimal(1)
    return Decimal(1).scaleb(-CRYPTO_PLACES)


def shown_as(value: Decimal | None, asset: str | None) -> str | None:
    """``value`` rounded to ``asset``'s minor unit, as a plain decimal string."""
    if value is None:
        return None
    try:
        return f"{value.quantize(minor_unit(asset), rounding=ROUND_HALF_EVEN):f}"
    except InvalidOperation:  # too many digits for the context: shown as it is
        return f"{value:f}"


def quote_of(pair: str | None) -> str | None:
    return pair.partition("/")[2] or None if pair else None


def base_of(pair: str | None) -> str | None:
    return pair.partition("/")[0] or None if pair else None


def display(attribute: str, asset: Callable[[Any], str | None]) -> Any:
    """A ``…Display`` field of a type: its ``attribute`` shown in ``asset(root)``'s unit."""

    def resolve(root: strawberry.Parent[Any]) -> str | None:
        return shown_as(getattr(root, attribute), asset(root))

    return strawberry.field(resolver=resolve, description=(
        f"{attribute} rounded to its currency's minor unit, for display only"))
