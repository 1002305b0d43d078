"""The one parser of numbers people type: bot configurations (bot.json and GraphQL), the
CLI's --price, --balance and --fee-rate, GraphQL's Decimal scalar.

A number is written in ASCII as ``[+-]digits[.digits][e[+-]digits]``: ``"١٢"`` (Arabic-Indic
digits), ``"1_0"`` (Python's digit grouping), ``"NaN"`` or ``"Infinity"`` are not numbers
here, whatever ``Decimal()`` accepts. Then it is bounded three ways, each with its own code:

- ``TOO_MANY_DIGITS``: more significant digits than calculations keep (28): the rest would
  be rounded away without a word;
- ``EXPONENT_OUT_OF_RANGE``: a magnitude beyond 1e±30, which no price, amount or percentage
  has and which overflows (``decimal.Overflow``) as soon as it is multiplied;
- the field's own range (:class:`Bounds`): ``NOT_POSITIVE``, ``NEGATIVE`` or ``OUT_OF_RANGE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from domain.errors import DomainError, FloatMoneyError, InvalidNumberError

MAX_DIGITS = 28  # the decimal context's precision: every calculation keeps 28 digits
MAX_EXPONENT = 30  # |adjusted exponent| of any input: 1e-30 .. 9.99e30
MAX_TEXT = 64  # characters of a written number, signs and exponent included
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")


def decimal_from_text(text: str, field: str) -> Decimal:
    """A written number (surrounding spaces allowed) as a Decimal: ASCII digits only."""
    stripped = text.strip()
    if len(stripped) > MAX_TEXT:
        raise DomainError(f"is {len(stripped)} characters long; a number has at most "
                          f"{MAX_TEXT}", code="TOO_MANY_DIGITS", field=field)
    if not _NUMBER.fullmatch(stripped):
        raise InvalidNumberError(f"{_shown(text)} is not a number: write it with the digits "
                                 "0-9, one '.', and an optional exponent, e.g. \"12.5\"",
                                 field=field)
    return Decimal(stripped)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 20 else text[:20] + "…")


def exact_number(raw: object, field: str) -> Decimal:
    """Decimal, int or written number -> Decimal; a float is ``FLOAT_NOT_ALLOWED``."""
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, bool):
        raise InvalidNumberError(f"expected a number, got {raw!r}", field=field)
    elif isinstance(raw, float):
        raise FloatMoneyError(
            f"got the float {raw!r}; give money as a string or integer, e.g. \"{raw}\"",
            field=field)
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, str):
        value = decimal_from_text(raw, field)
    else:
        raise InvalidNumberError(f"expected a number, got {type(raw).__name__}", field=field)
    if not value.is_finite():
        raise InvalidNumberError(f"{raw!r} is not a finite number", field=field)
    return value


def size_violations(value: Decimal, field: str) -> list[DomainError]:
    """Digits and exponent: what every input number must respect, whatever its field."""
    if not value:
        return []
    if value.adjusted() > MAX_EXPONENT or value.adjusted() < -MAX_EXPONENT:
        return [DomainError(f"{_magnitude(value)} is out of range: a number lies between "
                            f"1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT}",
                            code="EXPONENT_OUT_OF_RANGE", field=field)]
    # Counted on the digits as written (normalize() would round them to 28 first).
    if len("".join(map(str, value.as_tuple().digits)).rstrip("0")) > MAX_DIGITS:
        return [DomainError(f"has more than {MAX_DIGITS} significant digits",
                            code="TOO_MANY_DIGITS", field=field)]
    return []


def _magnitude(value: Decimal) -> str:
    return f"{'-' if value.is_signed() else ''}1e{value.adjusted()}"


@dataclass(frozen=True)
class Bounds:
    """A field's range, ``[low, high]`` (``high`` excluded when ``high_open``).
    ``sign_code`` names a wrong sign apart from the range, as the rules always did:
    ``NOT_POSITIVE`` for a field that must be > 0, ``NEGATIVE`` for one that must be >= 0."""

    low: Decimal
    high: Decimal
    high_open: bool = False
    sign_code: str | None = None

    def violations(self, value: Decimal, field: str) -> list[DomainError]:
        problems = size_violations(value, field)
        if problems:
            return problems
        if self.sign_code == "NOT_POSITIVE" and value <= 0:
            return [DomainError("must be > 0", code="NOT_POSITIVE", field=field)]
        if self.sign_code == "NEGATIVE" and value < 0:
            return [DomainError("must be >= 0", code="NEGATIVE", field=field)]
        if value < self.low or value > self.high or (self.high_open and value == self.high):
            return [DomainError(f"must be {self.describe()}", code="OUT_OF_RANGE", field=field)]
        return []

    def describe(self) -> str:
        """As the README's table says it: ``from 0.00000001 to 1000000000000``."""
        high = f"below {_plain(self.high)}" if self.high_open else f"to {_plain(self.high)}"
        return f"from {_plain(self.low)} {high}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def parse_number(raw: object, field: str, bounds: Bounds | None = None) -> Decimal:
    """``raw`` as a Decimal within the digits, the exponent and ``bounds``; else the first
    problem as a :class:`DomainError` naming ``field``."""
    value = exact_number(raw, field)
    problems = bounds.violations(value, field) if bounds else size_violations(value, field)
    if problems:
        raise problems[0]
    return value


def parse_whole(raw: object, field: str, bounds: Bounds | None = None) -> int:
    """A whole number (an int, or written) within the digits, the exponent and ``bounds``."""
    value = parse_number(raw, field, bounds)
    if value != value.to_integral_value():
        raise DomainError("must be a whole number", code="NOT_AN_INTEGER", field=field)
    return int(value)


D = Decimal
# Inputs outside a bot configuration (the configuration's own: domain.dca.FIELD_BOUNDS).
PRICE = Bounds(D("1e-12"), D("1e12"), sign_code="NOT_POSITIVE")
BALANCE = Bounds(D(0), D("1e15"))
FEE_RATE = Bounds(D(0), D(1), high_open=True)
