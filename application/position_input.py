"""What people type to open a position or attach an exit, checked: the pair, the size of
a buy, a trailing stop's distance."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from domain.dca import PAIR_MAX
from domain.errors import DomainError
from domain.numbers import PRICE, Bounds, parse_number
from domain.text import checked_text
from domain.trailing import check_trail

D = Decimal
QUOTE = Bounds(D("0.00000001"), D("1e12"), sign_code="NOT_POSITIVE")
AMOUNT = Bounds(D("1e-12"), D("1e12"), sign_code="NOT_POSITIVE")


class Trail(NamedTuple):
    """A trailing stop's distance (one of the two) and its optional activation price."""

    percent: Decimal | None = None
    amount: Decimal | None = None
    activation_price: Decimal | None = None


def checked_pair(pair: str) -> str:
    """A pair as bots name theirs: ``BASE/QUOTE``, at most 32 characters of plain text."""
    text = checked_text(pair, "pair", max_chars=PAIR_MAX)
    base, slash, quote = text.partition("/")
    if text != text.strip().upper() or not (slash and base and quote) or "/" in quote:
        raise DomainError("must look like 'BTC/USDT'", code="INVALID_PAIR", field="pair")
    return text


def size_of(price: Decimal, quote_amount, amount) -> tuple[Decimal, Decimal]:
    """(units, quote) of a buy of ``quote_amount`` or of ``amount`` units at ``price``."""
    if quote_amount is not None:
        quote = parse_number(quote_amount, "quote_amount", QUOTE)
        return quote / price, quote
    units = parse_number(amount, "amount", AMOUNT)
    return units, units * price


def trail_of(trail: Trail, price: Decimal,
             ) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(percent, amount, activation price) of ``trail``, checked at ``price``."""
    pct = None if trail.percent is None else parse_number(trail.percent, "trail_percent")
    distance = (None if trail.amount is None
                else parse_number(trail.amount, "trail_amount", PRICE))
    activation = (None if trail.activation_price is None
                  else parse_number(trail.activation_price, "activation_price", PRICE))
    check_trail(pct, distance, price)
    return pct, distance, activation
