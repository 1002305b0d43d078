"""``exchangeAccounts(first, after)``: the caller's accounts, paper included, oldest first."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.common import id_page
from api.graphql.exchange_accounts.types import (
    ExchangeAccount,
    ExchangeAccountConnection,
    ExchangeAccountEdge,
)
from api.graphql.permissions import IsAuthenticated


@strawberry.type
class ExchangeAccountQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your exchange accounts (paper and live, not removed ones), oldest first (at most "
        "100 a page)"))
    async def exchange_accounts(self, info: Info, first: int | None = 50,
                                after: str | None = None) -> ExchangeAccountConnection:
        ctx = info.context
        service = ctx.runtime.exchange_accounts
        views = await ctx.read.slow(service.list, ctx.principal.user_id)
        page, page_info = id_page(views, [str(v.id) for v in views], first, after, "account")
        return ExchangeAccountConnection(edges=[
            ExchangeAccountEdge(node=ExchangeAccount.of(v), cursor=str(v.id)) for v in page],
            page_info=page_info)
