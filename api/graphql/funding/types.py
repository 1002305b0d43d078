"""``FundingPlan``, ``WalletRequirement`` and the answers of the funding mutations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry.types import Info

from api.graphql.common import FieldError, PageInfo
from domain.funding import FundingPlan as Plan
from projections.wallet import latest_plans


@strawberry.type(description=(
    "What a bot needs that its account does not have: status awaiting_deposit, "
    "ready_to_execute (an observed balance covers it: start the bot), executed or "
    "cancelled"))
class FundingPlan:
    id: strawberry.ID
    bot_id: strawberry.ID
    account_id: strawberry.ID
    asset: str
    required: Decimal = strawberry.field(description=(
        "the bot's worst case: base order, every safety order and fees (less what its open "
        "deal spent)"))
    available: Decimal = strawberry.field(description=(
        "what the account had for the bot after its other running bots, when last judged"))
    amount: Decimal = strawberry.field(description="what was missing when the plan opened")
    transfer_from: strawberry.ID | None = strawberry.field(description=(
        "another account of yours with the asset to spare, if any"))
    transfer_amount: Decimal | None
    message: str
    status: str
    reason: str | None = strawberry.field(description="why it was cancelled")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, plan: Plan) -> FundingPlan:
        return cls(id=strawberry.ID(str(plan.id)), bot_id=strawberry.ID(plan.bot_id),
                   account_id=strawberry.ID(plan.account_id), asset=plan.asset,
                   required=plan.required, available=plan.available, amount=plan.amount,
                   transfer_from=None if plan.transfer_from is None
                   else strawberry.ID(plan.transfer_from),
                   transfer_amount=plan.transfer_amount, message=plan.message,
                   status=plan.status.value, reason=plan.reason, created_at=plan.created_on,
                   updated_at=plan.modified_on)


async def funding_plan_of(info: Info, bot_id: str) -> FundingPlan | None:
    """A bot's latest plan: found in the ``wallet`` view, read from its events."""
    row = info.context.read.run(latest_plans, [bot_id]).get(bot_id)
    if row is None:
        return None
    trading = info.context.runtime.trading
    plan = await info.context.read.slow(trading.load, UUID(row["plan_id"]), Plan)
    return FundingPlan.of(plan)


@strawberry.type
class FundingPlanEdge:
    node: FundingPlan
    cursor: str


@strawberry.type
class FundingPlanConnection:
    edges: list[FundingPlanEdge]
    page_info: PageInfo


@strawberry.type(description="A running bot's share of its account's requirement")
class BotRequirement:
    bot_id: strawberry.ID
    name: str
    worst_case: Decimal
    spent: Decimal = strawberry.field(description="what its open deal has spent already")
    required: Decimal = strawberry.field(description="worst case less spent")


@strawberry.type(description=(
    "One account's capital in one asset: what its running bots may still spend "
    "(required) against what it holds (available). health: ok, warning (covered with "
    "less than 10% of required to spare) or critical (not covered)"))
class WalletRequirement:
    account_id: strawberry.ID
    kind: str
    exchange: str
    asset: str
    required: Decimal
    available: Decimal
    surplus_deficit: Decimal = strawberry.field(description="available - required")
    health: str
    bots: list[BotRequirement]

    @classmethod
    def of(cls, row: dict[str, Any]) -> WalletRequirement:
        bots = [BotRequirement(bot_id=strawberry.ID(b["bot_id"]), name=b["name"],
                               worst_case=b["worst_case"], spent=b["spent"],
                               required=b["required"]) for b in row["bots"]]
        return cls(account_id=strawberry.ID(row["account_id"]), kind=row["kind"],
                   exchange=row["exchange"], asset=row["asset"], required=row["required"],
                   available=row["available"], surplus_deficit=row["surplus_deficit"],
                   health=row["health"], bots=bots)


@strawberry.type
class FundingErrors:
    """Why a funding command was refused: NOT_FOUND, FUNDING_PLAN_CLOSED, ACCOUNT_NOT_PAPER,
    INSUFFICIENT_FUNDS, NOT_POSITIVE, INVALID_NUMBER, INVALID_ASSET, ..."""

    code: str
    message: str
    errors: list[FieldError]

    @classmethod
    def of(cls, errors: list[FieldError]) -> FundingErrors:
        return cls(code=errors[0].code, message=errors[0].message, errors=errors)


FundingPlanResult = Annotated[FundingPlan | FundingErrors,
                              strawberry.union("FundingPlanResult")]
