"""ccxt's unified structures (orders, trades, balances) translated into the port's values.

Exactness: every money value becomes a Decimal built from the exchange's own decimal text.
- The venue's client has ``number = str`` (ccxt's documented switch, see ccxt_venue): ccxt
  parses the exchange's strings and computes with its string arithmetic (``Precise``)
  anyway; ``number`` only decides the final conversion, so unified orders, trades and
  balances then carry the exchange's strings (``"0.01392600"``) instead of floats.
- A float can still arrive: markets loaded by a client with the default ``number = float``
  and shared through the markets cache (steps, minimums). It becomes ``Decimal(repr(x))``:
  ``repr`` is the shortest text that reads back as the same float, which is the exchange's
  own text whenever that had at most 15 significant digits (every step and minimum
  exchanges publish does); a float that is not finite is refused.
Nothing here calls ccxt; it reads the dicts ccxt returns.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from domain.errors import DomainError
from domain.numbers import exact_number
from domain.orders import OrderStatus
from domain.ports import Balance, ExchangeOrder, Trade

ZERO = Decimal(0)


def decimal_from(value: Any, field: str) -> Decimal | None:
    """A ccxt number (str, int, or float from a float client) as an exact Decimal."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DomainError(f"the exchange gave {value!r}", code="EXCHANGE_ERROR", field=field)
        value = repr(value)
    return exact_number(value, field)


def _required(value: Any, field: str) -> Decimal:
    number = decimal_from(value, field)
    if number is None:
        raise DomainError(f"the exchange gave no {field}", code="EXCHANGE_ERROR", field=field)
    return number


def status_from(unified: str | None, filled: Decimal) -> OrderStatus:
    """ccxt's unified status ('open', 'closed', 'canceled', 'expired', 'rejected'); an order
    still open with some fills is partially filled. None (an exchange that acknowledges a
    create with ids only) is an accepted order."""
    if unified in (None, "open"):
        return OrderStatus.PARTIALLY_FILLED if filled > ZERO else OrderStatus.ACCEPTED
    table = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED,
             "cancelled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED,
             "rejected": OrderStatus.REJECTED}
    try:
        return table[unified]
    except KeyError:
        raise DomainError(f"the exchange gave the order status {unified!r}",
                          code="EXCHANGE_ERROR") from None


def filled_of(order: dict[str, Any]) -> Decimal:
    return decimal_from(order.get("filled"), "filled") or ZERO


def fee_of(trade: dict[str, Any]) -> tuple[Decimal, str | None]:
    """The trade's fee and its currency. A trade charged in several assets (rare) keeps
    ccxt's first fee: Binance and Bybit spot charge one asset per fill."""
    fee = trade.get("fee") or next(iter(trade.get("fees") or ()), None) or {}
    cost = decimal_from(fee.get("cost"), "fee") or ZERO
    return cost, fee.get("currency")


def trade_from(trade: dict[str, Any], quote: str, fee_quote: Decimal | None = None,
               fee_conversion_rate: Decimal | None = None) -> Trade:
    """One of our fills. A fee of zero with no currency is a fee of zero in quote."""
    fee, currency = fee_of(trade)
    timestamp = trade.get("timestamp")
    return Trade(str(trade["id"]), _required(trade.get("price"), "price"),
                 _required(trade.get("amount"), "amount"), fee, currency or quote,
                 time_ms=int(timestamp) if timestamp is not None else None,
                 fee_quote=fee_quote, fee_conversion_rate=fee_conversion_rate)


def exchange_order_from(order: dict[str, Any], client_order_id: str,
                        trades: tuple[Trade, ...] = ()) -> ExchangeOrder:
    """``client_order_id`` is the engine's id (the exchange's form mapped back)."""
    status = status_from(order.get("status"), filled_of(order))
    reason = None
    if status is OrderStatus.CANCELLED:
        reason = "cancelled"
    elif status is OrderStatus.EXPIRED:
        reason = "expired on the exchange"
    elif status is OrderStatus.REJECTED:
        reason = "ORDER_REJECTED: the exchange rejected the order"
    return ExchangeOrder(str(order["id"]), client_order_id, status, trades, reason)


def balances_from(balance: dict[str, Any]) -> dict[str, Balance]:
    """Every asset ccxt lists with a free or used amount; ``used`` is what orders lock."""
    result: dict[str, Balance] = {}
    skip = {"info", "timestamp", "datetime", "free", "used", "total", "debt"}
    for asset, entry in balance.items():
        if asset in skip or not isinstance(entry, dict):
            continue
        free = decimal_from(entry.get("free"), f"{asset}.free")
        used = decimal_from(entry.get("used"), f"{asset}.used")
        if free is None and used is None:
            total = decimal_from(entry.get("total"), f"{asset}.total")
            free, used = (total or ZERO), ZERO  # an account type that reports totals only
        result[asset] = Balance(free or ZERO, used or ZERO)
    return result
