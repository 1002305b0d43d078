"""Queries: ``bots(first, after)`` (the caller's bots, oldest first) and ``bot(id)`` (null
for anything that is not the caller's)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from api.graphql.bots.types import Bot, BotConnection, BotEdge
from api.graphql.common import PageInfo, parse_uuid
from api.graphql.permissions import IsAuthenticated
from projections import portfolio, queries
from projections.queries import InvalidCursorError, Page


def cursor_error(error: InvalidCursorError) -> GraphQLError:
    return GraphQLError(str(error), extensions={"code": error.code})


async def load_page(loader, key) -> Page:
    try:
        return await loader.load(key)
    except InvalidCursorError as error:
        raise cursor_error(error) from None


def selected_names(info: Info, *path: str) -> set[str]:
    """The names of the fields selected at ``path`` below the field ``info`` resolves,
    through fragments and whatever their directives (a superset of what is shown)."""
    level = [selection for field in info.selected_fields for selection in field.selections]
    for name in (*path, None):
        below: list[Any] = []
        names: set[str] = set()
        while level:
            selection = level.pop()
            if isinstance(selection, SelectedField):
                names.add(selection.name)
                if selection.name == name:
                    below.extend(selection.selections)
            else:  # a fragment: its selections are at this level
                level.extend(selection.selections)
        if name is None:
            return names
        level = below
    return set()


async def preload_pnl(ctx: Any, bots: list[Bot]) -> None:
    """Every bot's P/L rows in one hop to the read side (two batches, the statements the
    loaders would run), so that its ``pnl`` is answered without an awaited resolver and a
    loader's future per bot; the loaders keep them for the rest of the answer (an open
    deal's own figures)."""
    deal_of = {str(bot.id): bot.open_deal_id and str(bot.open_deal_id) for bot in bots}
    rows, deals = await ctx.read.run_async(_page_pnl, deal_of)
    ctx.loaders.bot_pnl.prime_many({bot_id: rows.get(bot_id) for bot_id in deal_of})
    ctx.loaders.deal_pnl.prime_many(deals)
    for bot in bots:
        row = rows.get(str(bot.id))
        deal = deal_of[str(bot.id)]
        bot.preloaded = (row, None if row is None or deal is None else deals.get(deal))


def _page_pnl(store: Any, deal_of: dict[str, str | None]) -> tuple[dict, dict]:
    rows = portfolio.pnl_by_bot(store, list(deal_of))
    deal_ids = [deal for bot_id, deal in deal_of.items() if deal and bot_id in rows]
    return rows, portfolio.pnl_by_deal(store, deal_ids) if deal_ids else {}


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
        if edges and "pnl" in selected_names(info, "edges", "node"):
            await preload_pnl(ctx, [edge.node for edge in edges])
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
