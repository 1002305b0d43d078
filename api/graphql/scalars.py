"""Scalars: Decimals travel as fixed-point strings ("0.00012500", never "1.25E-4" or a
float), and JSON for event data and health details."""

from __future__ import annotations

import decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON

from domain.errors import DomainError
from domain.numbers import parse_number


def _serialize(value: decimal.Decimal) -> str:
    return format(value, "f")


def _parse(value: Any) -> decimal.Decimal:
    if not isinstance(value, str):
        raise ValueError("a Decimal is sent as a string, e.g. \"12.50\"")
    try:  # the one parser of typed numbers: ASCII digits, bounded digits and exponent
        return parse_number(value, "value")
    except DomainError as error:
        raise ValueError(f"{error.code}: {error.message}") from None


DECIMAL = strawberry.scalar(
    name="Decimal",
    description="An exact decimal number, as a string (money, prices, amounts, ratios)",
    serialize=_serialize, parse_value=_parse)

SCALAR_MAP = {decimal.Decimal: DECIMAL}

__all__ = ["JSON", "SCALAR_MAP"]
