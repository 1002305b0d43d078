"""``ExchangeAccount`` and the answers of its mutations. No field ever carries a key, in
the clear or sealed."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.graphql.common import Errors, PageInfo
from api.graphql.portfolio.types import Balance
from application.exchange_accounts import AccountView
from projections.balances import balances_report


@strawberry.enum
class AccountKind(Enum):
    PAPER = "paper"
    LIVE = "live"


@strawberry.type(description=(
    "Where a user's money sits: the paper account, or a live account on an exchange "
    "(sandbox: the exchange's testnet, no real money)"))
class ExchangeAccount:
    id: strawberry.ID
    name: str
    exchange: str
    sandbox: bool
    kind: AccountKind
    status: str = strawberry.field(description=(
        "the last check of the keys: ok, auth_failed, permission_denied, unreachable, "
        "not_supported, error, not_checked; paper for a paper account"))
    checked_at: datetime | None = strawberry.field(description="when the keys were last "
                                                   "checked, whatever the outcome")
    last_sync_at: datetime | None = strawberry.field(description=(
        "when the exchange last reported the balances"))
    owner_id: strawberry.Private[str]

    @strawberry.field(description=(
        "free, locked and total per asset: what the exchange last reported, moved since "
        "by this account's orders; a paper account's from its deposits and trades"))
    async def balances(self, info: Info) -> list[Balance]:
        rows = info.context.read.run(balances_report, self.owner_id)
        return [Balance(account_id=strawberry.ID(r["account_id"]), asset=r["asset"],
                        free=r["free"], locked=r["locked"], total=r["total"],
                        updated_at=datetime.fromisoformat(r["updated_at"])
                        if r["updated_at"] else None)
                for r in rows if r["account_id"] == self.id]

    @classmethod
    def of(cls, view: AccountView) -> ExchangeAccount:
        return cls(id=strawberry.ID(str(view.id)), name=view.name, exchange=view.exchange,
                   sandbox=view.sandbox, kind=AccountKind(view.kind.value),
                   status=view.status, checked_at=view.checked_at,
                   last_sync_at=view.last_sync_at, owner_id=view.owner_id)


@strawberry.type
class ExchangeAccountEdge:
    node: ExchangeAccount
    cursor: str


@strawberry.type
class ExchangeAccountConnection:
    edges: list[ExchangeAccountEdge]
    page_info: PageInfo


@strawberry.type
class AccountErrors(Errors):
    """Why an account command was refused: ``code`` is the first error's
    (EXCHANGE_AUTH_FAILED, EXCHANGE_UNAVAILABLE, EXCHANGE_NOT_SUPPORTED,
    EXCHANGE_PERMISSION_DENIED, KEY_REQUIRED, ACCOUNT_IN_USE, NOT_FOUND, ...)."""

@strawberry.input
class AddExchangeAccountInput:
    exchange: str = strawberry.field(description="as ccxt names it, e.g. binance")
    api_key: str
    secret: str
    sandbox: bool = strawberry.field(default=False, description=(
        "the exchange's sandbox (testnet): no real money"))
    password: str | None = strawberry.field(default=None, description=(
        "the key's passphrase, for exchanges that have one"))
    name: str | None = None


ExchangeAccountResult = Annotated[ExchangeAccount | AccountErrors,
                                  strawberry.union("ExchangeAccountResult")]
