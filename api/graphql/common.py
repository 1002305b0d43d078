"""What every feature shares: page info, typed errors, ids and times as the views hold them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import strawberry
from graphql import GraphQLError

from domain.errors import DomainError

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    has_previous_page: bool = strawberry.field(default=False, description=(
        "paging backwards (last/before): whether rows come before this page"))
    start_cursor: str | None = None

    @classmethod
    def of(cls, page: Any) -> PageInfo:
        return cls(has_next_page=page.has_next, end_cursor=page.end_cursor,
                   has_previous_page=page.has_previous,
                   start_cursor=page.cursors[0] if page.cursors else None)


@strawberry.type
class Counted:
    """A connection's ``totalCount``, counted only when asked for (``count()``: the count
    query, on a worker thread)."""

    count: strawberry.Private[Any] = None

    @strawberry.field(description="How many items match, over all pages")
    async def total_count(self) -> int:
        return await self.count()


@strawberry.interface(description=(
    "Every error an answer can hold: a stable code, a message, and the input field it is "
    "about (camelCase) when there is one"))
class Error:
    code: str
    message: str
    field: str | None = None


@strawberry.type
class FieldError(Error):
    """One refused rule: a stable ``code``, the input ``field`` it is about (camelCase, when
    there is one) and, for configuration errors, the ``rule`` broken (e.g. NOT_POSITIVE)."""

    rule: str | None = None
    funding_plan_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "INSUFFICIENT_FUNDS_EXCHANGE, FUNDING_PLAN_REQUIRED: the plan recording the need"))




@strawberry.type
class Errors(Error):
    """A refused command with every reason: ``code``, ``message`` and ``field`` are the
    first error's."""

    errors: list[FieldError] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, errors: list[FieldError]) -> Any:
        first = errors[0]
        return cls(code=first.code, message=first.message, field=first.field, errors=errors)


def camel(name: str | None) -> str | None:
    if not name:
        return name
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_error(error: DomainError, field: str | None = None) -> FieldError:
    plan = getattr(error, "plan_id", None)
    return FieldError(code=error.code, message=error.message,
                      field=field if field is not None else camel(error.field),
                      funding_plan_id=None if plan is None else strawberry.ID(str(plan)))


def cursor_page(items: list[T], cursors: list[str], first: int | None, after: str | None,
                what: str) -> tuple[list[T], PageInfo]:
    """The page of ``items`` (each named by its cursor in ``cursors``) after ``after``:
    at most ``first`` (50 by default); ``INVALID_CURSOR`` for a cursor that names none."""

    start = 0
    if after is not None:
        if after not in cursors:
            raise GraphQLError(f"the cursor names no {what} of yours",
                               extensions={"code": "INVALID_CURSOR"})
        start = cursors.index(after) + 1
    page = items[start:start + (first or 50)]
    end = start + len(page)
    return page, PageInfo(has_next_page=end < len(items),
                          end_cursor=cursors[end - 1] if page else None)


def parse_uuid(text: str | None) -> UUID | None:
    """An id as sent by a client, or None when it cannot name anything."""
    try:
        return UUID(str(text).strip())
    except ValueError:
        return None


def when(text: str | None) -> datetime | None:
    """A time as the views store it (ISO 8601 text, UTC)."""
    return None if text is None else datetime.fromisoformat(text)


def utc(moment: datetime | None) -> datetime | None:
    """A client's time: one without a zone is UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
