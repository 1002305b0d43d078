"""Queries: ``bots(first, after)`` (the caller's bots, oldest first) and ``bot(id)`` (null
for anything that is not the caller's)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.bots.types import Bot, BotConnection, BotEdge
from api.graphql.common import PageInfo, parse_uuid
from api.graphql.permissions import IsAuthenticated
from projections import queries
from projections.queries import InvalidCursorError, Page


def cursor_error(error: InvalidCursorError) -> GraphQLError:
    return GraphQLError(str(error), extensions={"code": error.code})


async def load_page(loader, key) -> Page:
    try:
        return await loader.load(key)
    except InvalidCursorError as error:
        raise cursor_error(error) from None


@strawberry.type
class BotQueries:
    @strawberry.field(permission_classes=[IsAuthenticated],
                      description=("Your bots, oldest first (at most 100 a page); "
                                   "last/before page backwards"))
    async def bots(self, info: Info, first: int | None = 50, after: str | None = None,
                   last: int | None = None, before: str | None = None) -> BotConnection:
        ctx = info.context
        owner = ctx.user_id
        page = await load_page(ctx.loaders.bot_pages, (owner, first, after, last, before))
        edges = [BotEdge(node=Bot.from_row(row), cursor=cursor)
                 for row, cursor in zip(page.rows, page.cursors, strict=True)]
        return BotConnection(edges=edges, page_info=PageInfo.of(page), count=lambda: (
            ctx.read.run_async(queries.bots_count, owner)))

    @strawberry.field(permission_classes=[IsAuthenticated],
                      description="One of your bots; null for anything else")
    async def bot(self, info: Info, id: strawberry.ID) -> Bot | None:
        ctx = info.context
        if parse_uuid(id) is None:
            return None
        row = await ctx.loaders.bots.load(str(parse_uuid(id)))
        return Bot.from_row(row) if row is not None and ctx.can_see(row["owner_id"]) else None
