"""``positions(status, first, after)``: the caller's positions, newest first, each with its
exits' live levels; ``position(id)``: one of them (null for anyone else's)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.common import cursor_page, parse_uuid
from api.graphql.permissions import IsAuthenticated
from api.graphql.positions.types import (
    Position,
    PositionConnection,
    PositionEdge,
    PositionStatus,
)


@strawberry.type
class PositionQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your positions, newest first (at most 100 a page), in one status"))
    async def positions(self, info: Info, status: PositionStatus | None = None,
                        first: int | None = 50,
                        after: str | None = None) -> PositionConnection:
        ctx = info.context
        found = await ctx.read.slow(ctx.runtime.positions.list, ctx.principal.user_id)
        found = [v for v in found if status is None or v.position.status is status]
        page, page_info = cursor_page(found, [str(v.position.id) for v in found], first,
                                      after, "position")
        edges = [PositionEdge(node=Position.of(v), cursor=str(v.position.id)) for v in page]
        return PositionConnection(edges=edges, page_info=page_info)

    @strawberry.field(permission_classes=[IsAuthenticated],
                      description="One of your positions; null for anything else")
    async def position(self, info: Info, id: strawberry.ID) -> Position | None:
        ctx = info.context
        position_id = parse_uuid(id)
        found = await ctx.read.slow(ctx.runtime.positions.list, ctx.principal.user_id)
        return next((Position.of(v) for v in found if v.position.id == position_id), None)
