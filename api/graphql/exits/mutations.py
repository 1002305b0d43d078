"""``closeDeals(ids)`` (each sold at market, a result per id), ``emergencyExit`` (all of the
caller's bots stopped, resting orders cancelled, holdings sold) and the administrators'
``systemEmergencyStop`` (trading halted, then the same for everyone)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.commands import execute
from api.graphql.common import parse_uuid
from api.graphql.deals.types import Deal
from api.graphql.permissions import IsAdmin, IsAuthenticated
from application.emergency_exit import ExitReport
from domain.errors import DomainError

MAX_IDS = 100


@strawberry.type(description="What closeDeals did with one id")
class CloseDealOutcome:
    id: strawberry.ID
    closed: bool
    code: str | None = strawberry.field(description="why not (DEAL_NOT_OPEN, NOT_FOUND, "
                                                    "CLOSE_REJECTED, ...)")
    message: str | None
    deal: Deal | None


@strawberry.type(description=(
    "An emergency exit: every event it recorded carries correlationId (the audit log marks "
    "them critical)"))
class EmergencyExitReport:
    correlation_id: str
    already_running: bool = strawberry.field(description=(
        "an exit was under way already: nothing was done twice (correlationId is that "
        "exit's)"))
    bots_stopped: int
    deals_closed: int
    orders_cancelled: int
    problems: list[str]

    @classmethod
    def of(cls, report: ExitReport) -> EmergencyExitReport:
        t = report.tally
        return cls(correlation_id=report.correlation_id,
                   already_running=report.already_running, bots_stopped=t.bots_stopped,
                   deals_closed=t.deals_closed, orders_cancelled=t.orders_cancelled,
                   problems=list(t.problems))


async def _exit(info: Info, command) -> EmergencyExitReport:
    runtime = info.context.runtime
    try:
        report = await execute(runtime, lambda: command(runtime))
    except DomainError as error:
        raise GraphQLError(error.message, extensions={"code": error.code}) from None
    return EmergencyExitReport.of(report)


@strawberry.type
class ExitMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        f"Close up to {MAX_IDS} of your open deals at market; one outcome per id, in order"))
    async def close_deals(self, info: Info, ids: list[strawberry.ID]) -> list[CloseDealOutcome]:
        if len(ids) > MAX_IDS:
            raise GraphQLError(f"at most {MAX_IDS} ids at once",
                               extensions={"code": "TOO_MANY_IDS", "max": MAX_IDS})
        ctx = info.context
        outcomes = []
        for raw in ids:
            try:
                deal_id = await execute(ctx.runtime, lambda raw=raw: ctx.runtime.bots.close_deal(
                    ctx.principal, parse_uuid(raw)))
            except DomainError as error:
                outcomes.append(CloseDealOutcome(id=raw, closed=False, code=error.code,
                                                 message=error.message, deal=None))
                continue
            row = await ctx.fresh_loaders().deals.load(str(deal_id))
            outcomes.append(CloseDealOutcome(id=raw, closed=True, code=None, message=None,
                                             deal=Deal.from_row(row)))
        return outcomes

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Get out now: every bot of yours stopped, every resting order cancelled, every "
        "holding a bot bought sold at market, on every account"))
    async def emergency_exit(self, info: Info, reason: str | None = None
                             ) -> EmergencyExitReport:
        principal = info.context.principal
        return await _exit(info, lambda runtime: runtime.emergency_exit.run(
            principal.user_id, str(principal.user_id), reason))

    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "Halt trading, then an emergency exit for every user (resume trading with "
        "emergencyResume)"))
    async def system_emergency_stop(self, info: Info, reason: str) -> EmergencyExitReport:
        actor = str(info.context.principal.user_id)
        return await _exit(info, lambda runtime: runtime.operations.system_emergency_stop(
            reason, actor))
