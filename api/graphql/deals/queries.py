"""Queries: ``deals(botId, status)`` (newest first) and ``deal(id)`` with its orders and
fills. Another user's bot or deal reads as null."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.bots.queries import load_page
from api.graphql.common import PageInfo, parse_uuid
from api.graphql.deals.types import Deal, DealConnection, DealEdge, DealStatus
from api.graphql.permissions import IsAuthenticated
from projections import queries


@strawberry.type
class DealQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your deals, newest first: of one bot (null if it is not yours), in one status; "
        "last/before page backwards"))
    async def deals(self, info: Info, bot_id: strawberry.ID | None = None,
                    status: DealStatus | None = None, first: int | None = 50,
                    after: str | None = None, last: int | None = None,
                    before: str | None = None) -> DealConnection | None:
        ctx = info.context
        owner = ctx.user_id
        bot_key = None
        if bot_id is not None:
            bot_key = str(parse_uuid(bot_id)) if parse_uuid(bot_id) else None
            bot = await ctx.loaders.bots.load(bot_key) if bot_key else None
            if bot is None or not ctx.can_see(bot["owner_id"]):
                return None
            owner = None  # the bot's deals, whoever owns it (an admin may look)
        state = None if status is None else status.value
        key = (owner, bot_key, state, first, after, last, before)
        page = await load_page(ctx.loaders.deal_pages, key)
        edges = [DealEdge(node=Deal.from_row(row), cursor=cursor)
                 for row, cursor in zip(page.rows, page.cursors, strict=True)]
        filters = queries.deal_filters(owner, bot_key, state)
        return DealConnection(edges=edges, page_info=PageInfo.of(page), count=lambda: (
            ctx.read.run_async(queries.deals_count, filters)))

    @strawberry.field(permission_classes=[IsAuthenticated],
                      description="One of your deals; null for anything else")
    async def deal(self, info: Info, id: strawberry.ID) -> Deal | None:
        ctx = info.context
        deal_id = parse_uuid(id)
        row = await ctx.loaders.deals.load(str(deal_id)) if deal_id else None
        return Deal.from_row(row) if row is not None and ctx.can_see(row["owner_id"]) else None
