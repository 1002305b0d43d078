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


class DecimalInputError(ValueError):
    """A Decimal argument refused: the client's input, not a fault of ours, with the code of
    the number's rule (graphql-core keeps it as the error's ``original_error``, in a
    variable or a literal of the document alike)."""

    def __init__(self, message: str, code: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def _parse(value: Any) -> decimal.Decimal:
    if not isinstance(value, str):
        raise DecimalInputError("a Decimal is sent as a string, e.g. \"12.50\"",
                                "INVALID_NUMBER")
    try:  # the one parser of typed numbers: ASCII digits, bounded digits and exponent
        return parse_number(value, "value")
    except DomainError as error:
        raise DecimalInputError(error.message, error.code) from None


DECIMAL = strawberry.scalar(
    name="Decimal",
    description="An exact decimal number, as a string (money, prices, amounts, ratios)",
    serialize=_serialize, parse_value=_parse)

SCALAR_MAP = {decimal.Decimal: DECIMAL}

__all__ = ["JSON", "SCALAR_MAP"]
