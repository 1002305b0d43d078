"""Mutations: ``setRiskLimits(input)`` and ``promoteBot(id, exchangeAccountId)``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.bots.mutations import run
from api.graphql.bots.types import BotResult
from api.graphql.commands import execute
from api.graphql.common import field_error, parse_uuid
from api.graphql.permissions import IsAuthenticated
from api.graphql.risk.types import RiskLimits, RiskLimitsErrors, RiskLimitsInput, RiskLimitsResult
from domain.errors import DomainError


@strawberry.type
class RiskMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Set your risk limits: a limit left out stays, null clears it. A deal, safety order "
        "or position that would pass one is refused before any order is sent "
        "(RISK_LIMIT_REACHED)"))
    async def set_risk_limits(self, info: Info, input: RiskLimitsInput) -> RiskLimitsResult:
        ctx = info.context
        owner, changes = str(ctx.principal.user_id), input.changes()
        try:
            view = await execute(ctx.runtime, lambda: ctx.runtime.risk.set_limits(
                owner, changes, actor=owner))
        except DomainError as error:
            problem = field_error(error)
            return RiskLimitsErrors(code=problem.code, message=problem.message,
                                    errors=[problem])
        return RiskLimits.of(view)

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Move a paper bot to a live exchange account, if its paper record passes the gate "
        "(every rule missed is named: PROMOTION_TOO_EARLY, PROMOTION_TOO_FEW_DEALS, "
        "PROMOTION_WIN_RATE, PROMOTION_PROFIT); a running bot comes out paused"))
    async def promote_bot(self, info: Info, id: strawberry.ID,
                          exchange_account_id: strawberry.ID) -> BotResult:
        promotion = info.context.runtime.promotion
        return await run(info, lambda bots, principal: promotion.promote(
            principal, parse_uuid(id), parse_uuid(exchange_account_id)))
