"""``closeDeal(id)``: sell an open deal at the market's current price now."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.commands import execute
from api.graphql.common import field_error, parse_uuid
from api.graphql.deals.types import Deal, DealErrors, DealResult
from api.graphql.permissions import IsAuthenticated
from domain.errors import DomainError


@strawberry.type
class DealMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Close one of your open deals at market (the bot carries on)"))
    async def close_deal(self, info: Info, id: strawberry.ID) -> DealResult:
        ctx = info.context
        principal = ctx.principal
        try:
            deal_id = await execute(ctx.runtime, lambda: ctx.runtime.bots.close_deal(
                principal, parse_uuid(id)))
        except DomainError as error:
            found = field_error(error)
            return DealErrors.of([found])
        return Deal.from_row(await ctx.fresh_loaders().deals.load(str(deal_id)))
