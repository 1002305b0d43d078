"""Queries: ``auditLog(filter)`` (an administrator sees every event, a user the events of
what they own) and ``history(aggregateId, asOf)`` (owner or administrator, else null)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.audit.types import (
    AggregateHistory,
    AuditConnection,
    AuditEdge,
    AuditEntry,
    AuditLogFilter,
)
from api.graphql.bots.queries import load_page
from api.graphql.common import PageInfo, parse_uuid, utc
from api.graphql.permissions import IsAuthenticated
from domain.text import text_problem


@strawberry.type
class AuditQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Stored events, newest first: all of them for an administrator, else the events "
        "of your bots, deals, orders, accounts and user"))
    async def audit_log(self, info: Info, filter: AuditLogFilter | None = None,
                        first: int | None = 50, after: str | None = None) -> AuditConnection:
        ctx = info.context
        wanted = filter or AuditLogFilter()
        _check_filter(wanted)
        aggregate = None
        if wanted.aggregate_id is not None:
            found = parse_uuid(wanted.aggregate_id)
            aggregate = str(found) if found else str(wanted.aggregate_id)
        key = (ctx.owner_scope(), wanted.actor, aggregate, first, after)
        page = await load_page(ctx.loaders.audit_pages, key)
        edges = [AuditEdge(node=AuditEntry.from_row(row), cursor=cursor)
                 for row, cursor in zip(page.rows, page.cursors, strict=True)]
        return AuditConnection(edges=edges, page_info=PageInfo(
            has_next_page=page.has_next, end_cursor=page.end_cursor))

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "An aggregate's events up to asOf and the state they made (time travel); null "
        "when it is not yours or did not exist yet"))
    async def history(self, info: Info, aggregate_id: strawberry.ID,
                      as_of: datetime | None = None) -> AggregateHistory | None:
        ctx = info.context
        found_id = parse_uuid(aggregate_id)
        if found_id is None:
            return None
        found = await ctx.loaders.histories.load((found_id, utc(as_of)))
        if found is None or not ctx.can_see(found.owner_id):
            return None
        return AggregateHistory.of(found)


def _check_filter(wanted: AuditLogFilter) -> None:
    """A filter text no stored value can hold is refused as inputs are (the database would
    refuse a NUL in a query's parameters)."""
    for name, value in (("actor", wanted.actor), ("aggregateId", wanted.aggregate_id)):
        problem = None if value is None else text_problem(str(value), name)
        if problem is not None:
            raise GraphQLError(f"filter.{name} {problem.message}",
                               extensions={"code": problem.code, "field": f"filter.{name}"})
