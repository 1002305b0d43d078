"""A market's rules (steps and minimums) and the rounding of orders, with ccxt's helpers.

- The amount is rounded with ``amount_to_precision``, which truncates (rounds down): a sell
  never asks for more than is held, a buy never spends more than it was given.
- The price is rounded with ``price_to_precision`` (to the nearest tick, as ccxt does).
- The minimums are checked after rounding, before anything is sent: an order below them
  comes back rejected with ``ORDER_BELOW_MIN_AMOUNT: ...`` or ``ORDER_BELOW_MIN_NOTIONAL:
  ...`` (the code, a colon, then the figures), which the engine records on the order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.exchanges.ccxt_client import isolated_decimals
from adapters.exchanges.ccxt_values import decimal_from
from domain.ports import MarketRules

# ccxt's precision modes (ccxt.base.decimal_to_precision), repeated here so that reading
# rules does not import ccxt.
DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE = 2, 3, 4


def _step(precision: Any, mode: int, field: str) -> Decimal | None:
    value = decimal_from(precision, field)
    if value is None or mode == SIGNIFICANT_DIGITS:
        return None  # significant digits set no fixed step
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    return value


def rules_of(market: dict[str, Any], precision_mode: int) -> MarketRules:
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    symbol = market.get("symbol", "market")
    return MarketRules(
        amount_step=_step(precision.get("amount"), precision_mode, f"{symbol} amount step"),
        price_step=_step(precision.get("price"), precision_mode, f"{symbol} price step"),
        min_amount=_positive((limits.get("amount") or {}).get("min"), f"{symbol} min amount"),
        min_notional=_positive((limits.get("cost") or {}).get("min"), f"{symbol} min cost"),
    )


def _positive(value: Any, field: str) -> Decimal | None:
    number = decimal_from(value, field)
    return number if number else None  # 0 is "no minimum"


def round_amount(client: Any, pair: str, amount: Decimal) -> Decimal:
    """Truncated to the market's amount step; 0 when less than one step is left."""
    import ccxt

    try:
        with isolated_decimals():
            text = client.amount_to_precision(pair, str(amount))
    except ccxt.InvalidOrder:  # ccxt refuses a result of 0: less than one step
        return Decimal(0)
    return Decimal(text)


def round_price(client: Any, pair: str, price: Decimal) -> Decimal:
    with isolated_decimals():
        text = client.price_to_precision(pair, str(price))
    return Decimal(text)
