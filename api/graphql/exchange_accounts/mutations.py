"""addExchangeAccount (keys checked with the exchange first, then stored sealed) and
removeExchangeAccount (refused while a bot runs on it). Keys are never logged or echoed."""

from __future__ import annotations

import logging

import strawberry
from strawberry.types import Info

from api.graphql.commands import execute
from api.graphql.common import field_error, parse_uuid
from api.graphql.exchange_accounts.types import (
    AccountErrors,
    AddExchangeAccountInput,
    ExchangeAccount,
    ExchangeAccountResult,
)
from api.graphql.permissions import IsAuthenticated
from domain.errors import DomainError

LOG = logging.getLogger("tradetape.graphql")


def _refused(error: DomainError) -> AccountErrors:
    LOG.info("graphql refused code=%s", error.code)  # one line: the code, never the input
    return AccountErrors.of([field_error(error)])


@strawberry.type
class ExchangeAccountMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Add a live exchange account: its keys are checked with an authenticated call "
        "first; refused, nothing is stored"))
    async def add_exchange_account(self, info: Info, input: AddExchangeAccountInput
                                   ) -> ExchangeAccountResult:
        ctx = info.context
        owner = ctx.principal.user_id
        try:
            view = await execute(ctx.runtime, lambda: ctx.runtime.exchange_accounts.add(
                owner, exchange=input.exchange, sandbox=input.sandbox,
                api_key=input.api_key, secret=input.secret, password=input.password,
                name=input.name, actor=str(owner)))
        except DomainError as error:
            return _refused(error)
        return ExchangeAccount.of(view)

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Remove one of your live exchange accounts (refused while a bot runs on it)"))
    async def remove_exchange_account(self, info: Info, id: strawberry.ID
                                      ) -> ExchangeAccountResult:
        ctx = info.context
        owner, account_id = ctx.principal.user_id, parse_uuid(id)
        if account_id is None:
            return _refused(DomainError(f"no exchange account {id}", code="NOT_FOUND",
                                        field="id"))
        try:
            view = await execute(ctx.runtime, lambda: ctx.runtime.exchange_accounts.remove(
                owner, account_id, actor=str(owner)))
        except DomainError as error:
            return _refused(error)
        return ExchangeAccount.of(view)
