"""Scalars: Decimals travel as fixed-point strings ("0.00012500", never "1.25E-4" or a
float), DateTime as ISO 8601 (an input bounded to a range every calculation with it can
hold), and JSON for event data and health details."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import dateutil.parser
import strawberry
from strawberry.scalars import JSON

from domain.errors import DomainError
from domain.numbers import parse_number


def _serialize(value: decimal.Decimal) -> str:
    return format(value, "f")


class ScalarInputError(ValueError):
    """A Decimal or DateTime argument refused: the client's input, not a fault of ours, with
    the code of its rule (graphql-core keeps it as the error's ``original_error``, in a
    variable or a literal of the document alike)."""

    def __init__(self, message: str, code: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def _parse(value: Any) -> decimal.Decimal:
    if not isinstance(value, str):
        raise ScalarInputError("a Decimal is sent as a string, e.g. \"12.50\"",
                                "INVALID_NUMBER")
    try:  # the one parser of typed numbers: ASCII digits, bounded digits and exponent
        return parse_number(value, "value")
    except DomainError as error:
        raise ScalarInputError(error.message, error.code) from None


DECIMAL = strawberry.scalar(
    name="Decimal",
    description="An exact decimal number, as a string (money, prices, amounts, ratios)",
    serialize=_serialize, parse_value=_parse)

# An input moment, in UTC, from the Unix epoch to before the year 9999: a calculation with
# it (converting it to UTC, a day or a period added) stays within what a date can hold.
EARLIEST = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
LATEST = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)


def _parse_moment(value: Any) -> datetime.datetime:
    """ISO 8601 as before (naive stays naive: UTC for the resolvers), within the range."""
    if not isinstance(value, str):
        raise ScalarInputError("a DateTime is sent as ISO 8601 text, e.g. "
                                "\"2026-03-01T12:00:00Z\"", "INVALID_TIME")
    try:
        moment = dateutil.parser.isoparse(value)
        in_utc = moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None \
            else moment.astimezone(datetime.UTC)
    except (ValueError, OverflowError):
        raise ScalarInputError(f"{value[:40]!r} is not an ISO 8601 date and time",
                                "INVALID_TIME") from None
    if not EARLIEST <= in_utc < LATEST:
        raise ScalarInputError("a moment lies from 1970-01-01 to before 9999-01-01 (UTC)",
                                "INVALID_TIME")
    return moment


DATETIME = strawberry.scalar(
    name="DateTime", description="Date with time (isoformat)",
    serialize=datetime.datetime.isoformat, parse_value=_parse_moment)

SCALAR_MAP = {decimal.Decimal: DECIMAL, datetime.datetime: DATETIME}

__all__ = ["JSON", "SCALAR_MAP"]
