"""A webhook signal as received: its authentication and its fields, checked before anything
is traded. Pure functions of the raw body, the header and the secret (no clock: the caller
passes ``now``).

Formats: TradingView cannot set headers, so its alert message carries the secret as a
``"secret"`` field; senders that can sign send ``X-Tradetape-Signature: sha256=<hex
HMAC-SHA256 of the raw body>``. Every comparison is in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.errors import DomainError
from domain.numbers import parse_number
from domain.webhooks import ACTIONS

MAX_BODY_BYTES = 16_384
MAX_LAG = timedelta(seconds=60)  # a signal older than its timestamp + this is stale
SIGNATURE_PREFIX = "sha256="
ID_MAX = 128


class SignalError(DomainError):
    """A signal refused before anything was traded; ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, code: str, status: int, field: str | None = None):
        super().__init__(message, code=code, field=field)
        self.status = status


@dataclass(frozen=True)
class Signal:
    action: str
    signal_id: str | None
    bot_id: UUID | None
    pair: str | None  # as sent: "BTCUSDT", "BINANCE:BTCUSDT" or "BTC/USDT"
    amount: Decimal | None
    price: Decimal | None
    sent_at: datetime | None


def signature_of(secret: str, body: bytes) -> str:
    """The header value a sender computes: ``sha256=<hex>``."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of the body (TradingView sends text/plain when the message is not
    JSON: refused the same way)."""
    if len(body) > MAX_BODY_BYTES:
        raise SignalError(f"a signal is at most {MAX_BODY_BYTES} bytes",
                          code="SIGNAL_TOO_LARGE", status=413)
    try:
        data = json.loads(body.decode("utf-8"), parse_float=str, parse_int=str,
                          parse_constant=_no_constant, object_pairs_hook=unique_keys)
    except KeyGivenTwice as twice:
        raise SignalError(f"the key {twice} is given twice", code="INVALID_JSON",
                          status=400) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SignalError("the body is not JSON", code="INVALID_JSON", status=400) from None
    if not isinstance(data, dict):
        raise SignalError("the body must be a JSON object", code="INVALID_JSON", status=400)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(name)


class KeyGivenTwice(Exception):
    """A JSON object gave a key twice (its text: the key's ``repr``)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` refusing a key given twice: JSON readers keep
    the last one silently, and what runs (a signal's action, a GraphQL request) must not
    depend on which reader read it."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        raise KeyGivenTwice(next(repr(k) for k, _ in pairs if k in seen or seen.add(k)))
    return data


def authenticate(secret: str, body: bytes, header: str | None,
                 data: dict[str, Any] | None) -> None:
    """The header's HMAC when there is one, else the body's ``secret`` field; SIGNAL_UNSIGNED
    with neither, SIGNAL_BAD_SIGNATURE / SIGNAL_BAD_SECRET when they do not match."""
    if header is not None:
        expected = signature_of(secret, body)
        if not hmac.compare_digest(header.strip().lower().encode(), expected.encode()):
            raise SignalError("the signature does not match the body",
                              code="SIGNAL_BAD_SIGNATURE", status=401)
        return
    given = None if data is None else data.get("secret")
    if given is None:
        raise SignalError("sign the body (X-Tradetape-Signature) or send the secret",
                          code="SIGNAL_UNSIGNED", status=401)
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), secret.encode()):
        raise SignalError("the secret does not match", code="SIGNAL_BAD_SECRET", status=401)


def read_signal(data: dict[str, Any]) -> Signal:
    """The signal's fields, each checked (UNKNOWN_ACTION, INVALID_SIGNAL naming the field)."""
    action = data.get("action")
    if not isinstance(action, str) or action.strip().lower() not in ACTIONS:
        raise SignalError(f"action must be one of {', '.join(ACTIONS)}",
                          code="UNKNOWN_ACTION", status=422, field="action")
    return Signal(action=action.strip().lower(), signal_id=_text(data, "id", ID_MAX),
                  bot_id=_uuid(data, "bot_id"), pair=_text(data, "pair", 40),
                  amount=_number(data, "amount"), price=_number(data, "price"),
                  sent_at=_time(data.get("timestamp")))


def check_fresh(signal: Signal, now: datetime) -> None:
    """SIGNAL_STALE past ``MAX_LAG``; a timestamp more than ``MAX_LAG`` ahead of ``now`` is
    refused too (it would never go stale). Compared as a difference: adding the lag to a
    timestamp near the year 9999 would overflow."""
    if signal.sent_at is None:
        return
    age = now - signal.sent_at
    lag = int(MAX_LAG.total_seconds())
    if age > MAX_LAG:
        raise SignalError(f"sent {int(age.total_seconds())} s ago: signals older than "
                          f"{lag} s are refused",
                          code="SIGNAL_STALE", status=422, field="timestamp")
    if -age > MAX_LAG:
        raise _invalid("timestamp", f"is {int(-age.total_seconds())} s ahead of the "
                                    f"server's clock: at most {lag} s is allowed")


def _invalid(field: str, message: str) -> SignalError:
    return SignalError(f"{field} {message}", code="INVALID_SIGNAL", status=422, field=field)


def _text(data: dict[str, Any], field: str, max_chars: int) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise _invalid(field, f"must be text of 1 to {max_chars} characters")
    return value.strip()


def _uuid(data: dict[str, Any], field: str) -> UUID | None:
    text = _text(data, field, 64)
    if text is None:
        return None
    try:
        return UUID(text)
    except ValueError:
        raise _invalid(field, "must be a bot's id") from None


def _number(data: dict[str, Any], field: str) -> Decimal | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):  # numbers arrive as text: parse_float/parse_int=str
        raise _invalid(field, "must be a number")
    try:
        number = parse_number(value, field)
    except DomainError as error:
        raise _invalid(field, error.message) from None
    if number <= 0:
        raise _invalid(field, "must be > 0")
    return number


def _time(value: Any) -> datetime | None:
    """``{{timenow}}`` (``2019-08-27T09:56:00Z``), or Unix seconds or milliseconds."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid("timestamp", "must be ISO 8601 UTC or Unix seconds")
    text = value.strip()
    try:
        if text.isascii() and text.isdigit():  # "١٧٧٢٣٦٦٤٠٠" is no number here
            seconds = int(text) / (1000 if len(text) > 11 else 1)
            return datetime.fromtimestamp(seconds, UTC)
        if not text.isascii():
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise _invalid("timestamp", "must be ISO 8601 UTC or Unix seconds") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def same_pair(sent: str, pair: str) -> bool:
    """TradingView's ``{{ticker}}`` (``BTCUSDT``, maybe ``BINANCE:BTCUSDT``) names a bot's
    ``BTC/USDT``."""
    ticker = sent.rpartition(":")[2]

    def flat(text: str) -> str:
        return "".join(ch for ch in text.upper() if ch.isalnum())
    return flat(ticker) == flat(pair)
