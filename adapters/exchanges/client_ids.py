"""Client order ids on exchanges: derived from the engine's order id, the same every time.

The engine names an order by its UUID (``Order.client_order_id`` is its hex, so backtests
and paper trading keep their events). On an exchange the id becomes ``"tt"`` + the id in a
form the exchange accepts. The same order therefore always carries the same exchange id (a
retried create is a duplicate the exchange refuses, never a second order), and the ``tt``
prefix is how reconciliation tells our orders from others on the same account.

Forms, by the exchange's rules (length and characters of its client-id field):
- ``hex``: ``tt`` + 32 hex digits, 34 characters (Binance ``^[.A-Z:/a-z0-9_-]{1,36}$``,
  Bybit ``orderLinkId`` up to 36).
- ``base62``: ``tt`` + 22 base-62 digits, 24 characters, for exchanges allowing fewer than
  34 characters or letters and digits only (OKX ``clOrdId``: up to 32 alphanumerics).
Both are reversible, so an order found on the exchange leads back to the engine's order.
"""

from __future__ import annotations

import re
from uuid import UUID

PREFIX = "tt"
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_WIDTH = 22  # 62**22 > 2**128
_HEX = re.compile(r"^tt[0-9a-f]{32}$")
_BASE62 = re.compile(r"^tt[0-9A-Za-z]{22}$")
# Exchanges whose client-id field cannot take 34 characters of [a-z0-9]; others get hex.
_BASE62_EXCHANGES = frozenset({"okx", "myokx", "okxus", "gate", "gateio", "kraken", "htx"})


def _form(exchange_id: str) -> str:
    return "base62" if exchange_id.lower() in _BASE62_EXCHANGES else "hex"


def client_order_id_for(order_id: UUID | str, exchange_id: str) -> str:
    """The client order id the exchange sees for the engine's order ``order_id`` (a UUID,
    or its hex as ``Order.client_order_id`` holds it)."""
    uid = order_id if isinstance(order_id, UUID) else UUID(hex=order_id)
    if _form(exchange_id) == "hex":
        return PREFIX + uid.hex
    n, digits = uid.int, []
    for _ in range(_BASE62_WIDTH):
        n, d = divmod(n, 62)
        digits.append(_DIGITS[d])
    return PREFIX + "".join(reversed(digits))


def is_ours(client_order_id: str | None, exchange_id: str) -> bool:
    """True when ``client_order_id`` (as the exchange reports it) was made by Tradetape."""
    if not client_order_id:
        return False
    pattern = _BASE62 if _form(exchange_id) == "base62" else _HEX
    return pattern.match(client_order_id) is not None


def order_id_from(client_order_id: str | None, exchange_id: str) -> UUID | None:
    """The engine's order id behind one of our exchange client ids; None for others'."""
    if not is_ours(client_order_id, exchange_id):
        return None
    body = client_order_id[len(PREFIX):]
    if _form(exchange_id) == "hex":
        return UUID(hex=body)
    n = 0
    for ch in body:
        n = n * 62 + _DIGITS.index(ch)
    return UUID(int=n) if n < 2 ** 128 else None
