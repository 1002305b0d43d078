"""ccxt's exceptions translated at the boundary: no ccxt exception reaches a user.

Two kinds of failure, decided by ccxt's own class hierarchy:
- *transient* (the request may not have reached the exchange, or was throttled): network
  errors, timeouts, ``RateLimitExceeded``, ``DDoSProtection``, maintenance. Callers retry
  these with backoff (:func:`backoff_seconds`), and an order create that failed this way is
  looked up by its client id before anything is sent again (it may have executed).
- *refusals* (the exchange understood and said no): a named code and a reason, recorded on
  the order or returned to the user. The message never includes request parameters or
  headers: ccxt puts the response body in the message, never the keys.
"""

from __future__ import annotations

import random
import re

from domain.errors import DomainError

# Exchange answers can quote the request (Binance echoes parameters such as the signature
# or, on some errors, the API key): anything that looks like a key or signature is masked.
_SECRETISH = re.compile(r"(?i)(api[-_]?key|secret|signature|password|x-mbx-apikey)([\"'=: ]+)"
                        r"[^\"'&,\s}]+")
_LONG_TOKEN = re.compile(r"\b[A-Za-z0-9]{40,}\b")
MAX_REASON_CHARS = 300


class ExchangeUnavailable(DomainError):
    """The exchange could not be reached or asked us to slow down, after every retry."""

    code = "EXCHANGE_UNAVAILABLE"


def safe_reason(error: BaseException) -> str:
    """The exception's text with anything secret-looking masked, on one line, bounded."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = _SECRETISH.sub(r"\1\2***", text)
    text = _LONG_TOKEN.sub("***", text)
    return text[:MAX_REASON_CHARS]


def is_transient(error: BaseException) -> bool:
    import ccxt

    return isinstance(error, ccxt.NetworkError)


def refusal_code(error: BaseException) -> str:
    """The named code for a ccxt error (most specific class first)."""
    import ccxt

    table = (
        (ccxt.PermissionDenied, "EXCHANGE_PERMISSION_DENIED"),
        (ccxt.AccountSuspended, "EXCHANGE_PERMISSION_DENIED"),
        (ccxt.AuthenticationError, "EXCHANGE_AUTH_FAILED"),
        (ccxt.InsufficientFunds, "INSUFFICIENT_FUNDS"),
        (ccxt.DuplicateOrderId, "DUPLICATE_ORDER_ID"),
        (ccxt.OrderNotFound, "ORDER_NOT_FOUND"),
        (ccxt.InvalidOrder, "ORDER_INVALID"),
        (ccxt.BadSymbol, "PAIR_NOT_TRADED"),
        (ccxt.NotSupported, "EXCHANGE_NOT_SUPPORTED"),
        (ccxt.NetworkError, "EXCHANGE_UNAVAILABLE"),
    )
    for cls, code in table:
        if isinstance(error, cls):
            return code
    return "EXCHANGE_ERROR"


def translate(error: BaseException, doing: str) -> DomainError:
    """A DomainError with the code for ``error``; ``doing`` says what was being done
    (``"placing an order"``), so the one log line and the user's message read alone."""
    code = refusal_code(error)
    cls = ExchangeUnavailable if code == "EXCHANGE_UNAVAILABLE" else DomainError
    return cls(f"the exchange refused {doing}: {safe_reason(error)}"
               if code != "EXCHANGE_UNAVAILABLE"
               else f"the exchange could not be reached {doing}: {safe_reason(error)}",
               code=code)


def backoff_seconds(attempt: int, *, base: float = 0.5, cap: float = 30.0,
                    rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter (attempt 0, 1, 2, ...): a delay in
    [0, min(cap, base × 2^attempt)], so many clients retrying do not retry in step."""
    ceiling = min(cap, base * (2 ** attempt))
    return (rng or random).uniform(0, ceiling)
