"""``orders(botId, dealId, status, first, after, last, before)``: the caller's orders as a
table of their own (newest first, with ``totalCount``, paged either way); another user's bot
or deal reads as null."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.bots.queries import cursor_error
from api.graphql.common import PageInfo, parse_uuid
from api.graphql.deals.types import Order, OrderConnection, OrderEdge
from api.graphql.permissions import IsAuthenticated
from projections import queries


async def _owned(info: Info, loader, given: strawberry.ID | None) -> str | bool | None:
    """The id as the views hold it (None: not given), or False: not the caller's."""
    if given is None:
        return None
    key = parse_uuid(given)
    row = await loader.load(str(key)) if key else None
    return str(key) if row is not None and info.context.can_see(row["owner_id"]) else False


@strawberry.type
class OrderQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your orders, newest first: of one bot or deal (null if not yours), in one status; "
        "first/after page forwards, last/before backwards"))
    async def orders(self, info: Info, bot_id: strawberry.ID | None = None,
                     deal_id: strawberry.ID | None = None, status: str | None = None,
                     first: int | None = None, after: str | None = None,
                     last: int | None = None, before: str | None = None
                     ) -> OrderConnection | None:
        ctx = info.context
        bot = await _owned(info, ctx.loaders.bots, bot_id)
        deal = await _owned(info, ctx.loaders.deals, deal_id)
        if bot is False or deal is False:
            return None
        owner = None if bot or deal else ctx.user_id  # a bot's or deal's: whoever owns it
        filters = queries.order_filters(owner, bot, deal, _status(status))
        try:
            page = await ctx.read.run_async(queries.orders_page, filters, first=first,
                                            after=after, last=last, before=before)
        except queries.InvalidCursorError as error:
            raise cursor_error(error) from None
        total = await ctx.read.run_async(queries.orders_count, filters)
        edges = [OrderEdge(node=Order.from_row(r), cursor=c)
                 for r, c in zip(page.rows, page.cursors, strict=True)]
        return OrderConnection(edges=edges, page_info=PageInfo.of(page), total_count=total)


def _status(status: str | None) -> str | None:
    return None if status is None else status.strip().lower()
