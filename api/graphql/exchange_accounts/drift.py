"""``drift(first, after)``: what live exchanges said that differs from what Tradetape asked or
holds, newest first: drift found and resolved, stray orders cancelled, orders the exchange
did not know. From the front-end read model (``fe_drift``), the caller's accounts only."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import PageInfo
from api.graphql.permissions import IsAuthenticated


@strawberry.type(description="One difference between what we asked or hold and what an "
                             "exchange said")
class DriftEvent:
    position: int
    kind: str = strawberry.field(description=(
        "drift_detected, drift_resolved, stray_order_cancelled or order_lost"))
    account_id: strawberry.ID | None
    asset: str | None
    expected: str | None = strawberry.field(description="what the open deals hold (Decimal)")
    observed: str | None = strawberry.field(description="what the exchange reported")
    client_order_id: str | None
    order_id: strawberry.ID | None
    pair: str | None
    reason: str | None
    at: str


@strawberry.type
class DriftEdge:
    node: DriftEvent
    cursor: str


@strawberry.type
class DriftConnection:
    edges: list[DriftEdge]
    page_info: PageInfo


def _text(value) -> str | None:
    return None if value is None else str(value)


@strawberry.type
class DriftQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "What your live exchange accounts said apart from what was asked or is held, "
        "newest first (at most 100 a page)"))
    async def drift(self, info: Info, first: int | None = 50,
                    after: str | None = None) -> DriftConnection:
        from projections.queries import drift_stream

        ctx = info.context
        views = await ctx.read.slow(ctx.runtime.exchange_accounts.list, ctx.principal.user_id)
        before = None
        if after is not None:
            if not after.isdigit():
                raise GraphQLError("the cursor is not one this list gave",
                                   extensions={"code": "INVALID_CURSOR"})
            before = int(after)
        size = first or 50
        rows = ctx.read.run(drift_stream, [str(v.id) for v in views],
                            str(ctx.principal.user_id), size, before)
        page = rows[:size]
        edges = [DriftEdge(node=DriftEvent(
            position=r["position"], kind=r["kind"],
            account_id=strawberry.ID(r["account_id"]) if r["account_id"] else None,
            asset=r["asset"], expected=_text(r["expected"]), observed=_text(r["observed"]),
            client_order_id=r["client_order_id"],
            order_id=strawberry.ID(r["order_id"]) if r["order_id"] else None,
            pair=r["pair"], reason=r["reason"], at=r["at"]), cursor=str(r["position"]))
            for r in page]
        return DriftConnection(edges=edges, page_info=PageInfo(
            has_next_page=len(rows) > size,
            end_cursor=edges[-1].cursor if edges else None))
