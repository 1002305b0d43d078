"""``walletRequirements(asOf)``, ``fundingPlans(first, after, status)`` and
``fundingPlan(id)``: the caller's own, never another user's."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import cursor_page, parse_uuid, utc
from api.graphql.funding.types import (
    FundingPlan,
    FundingPlanConnection,
    FundingPlanEdge,
    WalletRequirement,
)
from api.graphql.permissions import IsAuthenticated
from domain.errors import NotFoundError
from domain.funding import FundingStatus
from projections.wallet import wallet_requirements, wallet_requirements_as_of


def funding_of(info: Info):
    monitor = info.context.runtime.wallet_monitor
    if monitor is None:
        raise GraphQLError("this server keeps no funding plans",
                           extensions={"code": "FUNDING_UNAVAILABLE"})
    return monitor.funding


@strawberry.type
class FundingQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Per account of yours and asset: what its running bots may still spend against "
        "what it holds; with asOf, as the events recorded by then had it (slow)"))
    async def wallet_requirements(self, info: Info, as_of: datetime | None = None
                                  ) -> list[WalletRequirement]:
        ctx = info.context
        moment = utc(as_of)
        if moment is None:
            rows = ctx.read.run(wallet_requirements, ctx.user_id)
        else:
            if moment > datetime.now(UTC):
                raise GraphQLError(f"asOf {moment.isoformat()} is in the future",
                                   extensions={"code": "AS_OF_IN_FUTURE"})
            rows = await ctx.read.slow(wallet_requirements_as_of, ctx.runtime.trading,
                                       ctx.user_id, moment)
        return [WalletRequirement.of(row) for row in rows]

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your funding plans, oldest first (at most 100 a page); status: awaiting_deposit, "
        "ready_to_execute, executed or cancelled"))
    async def funding_plans(self, info: Info, first: int | None = 50,
                            after: str | None = None, status: str | None = None
                            ) -> FundingPlanConnection:
        ctx = info.context
        wanted = _status(status)
        plans = await ctx.read.slow(funding_of(info).plans, ctx.user_id, wanted)
        page, info_ = cursor_page(plans, [str(p.id) for p in plans], first, after,
                                  "funding plan")
        edges = [FundingPlanEdge(node=FundingPlan.of(p), cursor=str(p.id)) for p in page]
        return FundingPlanConnection(edges=edges, page_info=info_)

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "One funding plan of yours; null for one that is not"))
    async def funding_plan(self, info: Info, id: strawberry.ID) -> FundingPlan | None:
        plan_id = parse_uuid(id)
        if plan_id is None:
            return None
        try:
            plan = await info.context.read.slow(funding_of(info).plan, info.context.user_id,
                                                plan_id)
        except NotFoundError:
            return None
        return FundingPlan.of(plan)


def _status(text: str | None) -> FundingStatus | None:
    if text is None:
        return None
    try:
        return FundingStatus(text.strip().lower())
    except ValueError:
        raise GraphQLError(f"status {text!r}: use awaiting_deposit, ready_to_execute, "
                           "executed or cancelled",
                           extensions={"code": "INVALID_STATUS"}) from None
