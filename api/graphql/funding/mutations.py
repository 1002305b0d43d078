"""cancelFundingPlan, depositToPaperAccount and withdrawFromPaperAccount."""

from __future__ import annotations

import logging
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.graphql.commands import execute
from api.graphql.common import field_error, parse_uuid
from api.graphql.exchange_accounts.types import ExchangeAccount
from api.graphql.funding.queries import funding_of
from api.graphql.funding.types import FundingErrors, FundingPlan, FundingPlanResult
from api.graphql.permissions import IsAuthenticated
from application.exchange_accounts import view_of
from domain.errors import DomainError

LOG = logging.getLogger("tradetape.graphql")

PaperAccountResult = Annotated[ExchangeAccount | FundingErrors,
                               strawberry.union("PaperAccountResult")]


def _refused(error: DomainError) -> FundingErrors:
    LOG.info("graphql refused code=%s", error.code)  # one line: the code, never the input
    return FundingErrors.of([field_error(error)])


def _not_found(what: str, id: str, field: str) -> FundingErrors:
    return _refused(DomainError(f"no {what} {id}", code="NOT_FOUND", field=field))


@strawberry.type
class FundingMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Cancel one of your funding plans that is still open"))
    async def cancel_funding_plan(self, info: Info, id: strawberry.ID) -> FundingPlanResult:
        ctx = info.context
        plan_id, owner = parse_uuid(id), ctx.user_id
        if plan_id is None:
            return _not_found("funding plan", id, "id")
        funding = funding_of(info)
        try:
            plan = await execute(ctx.runtime, lambda: funding.cancel(owner, plan_id, owner))
        except DomainError as error:
            return _refused(error)
        return FundingPlan.of(plan)

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Deposit play money to one of your paper accounts (amount as a string); the wallet "
        "monitor observes it at once, so a funding plan it covers is ready_to_execute"))
    async def deposit_to_paper_account(self, info: Info, account_id: strawberry.ID,
                                       asset: str, amount: str) -> PaperAccountResult:
        return await _paper_move(info, account_id, asset, amount, deposit=True)

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Withdraw from one of your paper accounts, at most what it has free"))
    async def withdraw_from_paper_account(self, info: Info, account_id: strawberry.ID,
                                          asset: str, amount: str) -> PaperAccountResult:
        return await _paper_move(info, account_id, asset, amount, deposit=False)


async def _paper_move(info: Info, account_id: str, asset: str, amount: str, *,
                      deposit: bool) -> PaperAccountResult:
    from application.paper_wallet import PaperWallet

    ctx = info.context
    key, owner = parse_uuid(account_id), ctx.principal.user_id
    funding_of(info)  # FUNDING_UNAVAILABLE without a wallet monitor
    if key is None:
        return _not_found("exchange account", account_id, "account_id")
    wallet = PaperWallet(ctx.runtime.wallet_monitor)
    move = wallet.deposit if deposit else wallet.withdraw
    try:
        account = await execute(ctx.runtime, lambda: move(owner, key, asset, amount,
                                                          str(owner)))
    except DomainError as error:
        return _refused(error)
    return ExchangeAccount.of(view_of(account))
