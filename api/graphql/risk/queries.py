"""Queries: ``riskLimits`` (yours) and ``promotionCheck(botId, asOf)`` (null for a bot not
yours)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from anyio import to_thread
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import parse_uuid, utc
from api.graphql.permissions import IsAuthenticated
from api.graphql.risk.types import PromotionCheck, RiskLimits
from domain.errors import NotFoundError


@strawberry.type
class RiskQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your risk limits, your open deals and exposure now, and the day's realized P/L"))
    async def risk_limits(self, info: Info) -> RiskLimits:
        ctx = info.context
        owner = str(ctx.principal.user_id)
        return RiskLimits.of(await to_thread.run_sync(lambda: ctx.runtime.risk.view(owner)))

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "The promotion gate's verdict on your paper bot, now or as of a past moment "
        "(computed from the events recorded by then)"))
    async def promotion_check(self, info: Info, bot_id: strawberry.ID,
                              as_of: datetime | None = None) -> PromotionCheck | None:
        ctx = info.context
        principal, moment = ctx.principal, utc(as_of)
        runtime = ctx.runtime
        if moment is not None and moment > runtime.clock.now():
            raise GraphQLError(f"asOf {moment.isoformat()} is in the future",
                               extensions={"code": "AS_OF_IN_FUTURE"})
        try:
            check = await to_thread.run_sync(lambda: runtime.promotion.check(
                principal, parse_uuid(bot_id), moment))
        except NotFoundError:
            return None
        return PromotionCheck.of(check)
