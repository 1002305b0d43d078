"""Scalars: Decimals travel as fixed-point strings ("0.00012500", never "1.25E-4" or a
float), and JSON for event data and health details."""

from __future__ import annotations

import decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON


def _serialize(value: decimal.Decimal) -> str:
    return format(value, "f")


def _parse(value: Any) -> decimal.Decimal:
    if not isinstance(value, str):
        raise ValueError("a Decimal is sent as a string, e.g. \"12.50\"")
    try:
        number = decimal.Decimal(value.strip())
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


DECIMAL = strawberry.scalar(
    name="Decimal",
    description="An exact decimal number, as a string (money, prices, amounts, ratios)",
    serialize=_serialize, parse_value=_parse)

SCALAR_MAP = {decimal.Decimal: DECIMAL}

__all__ = ["JSON", "SCALAR_MAP"]
