"""``backtestRun(id)``, ``backtestRuns`` (yours, newest first) and ``compareBacktests(ids)``;
another user's run is null, as if it did not exist."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.backtests.types import BacktestRun, BacktestRunConnection, BacktestRunEdge
from api.graphql.bots.queries import cursor_error
from api.graphql.common import PageInfo, parse_uuid
from api.graphql.permissions import IsAuthenticated
from projections import backtests
from projections.queries import InvalidCursorError, page_size

MAX_COMPARED = 10


async def visible(info: Info, run_id: str) -> BacktestRun | None:
    key = parse_uuid(run_id)
    row = await info.context.loaders.backtest_rows.load(str(key)) if key else None
    if row is None or not info.context.can_see(row["owner_id"]):
        return None
    return BacktestRun.from_row(row)


@strawberry.type
class BacktestQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "A backtest you ran through runBacktest; null for any other id"))
    async def backtest_run(self, info: Info, id: strawberry.ID) -> BacktestRun | None:
        return await visible(info, id)

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your backtests, newest first (at most 100 a page)"))
    async def backtest_runs(self, info: Info, first: int | None = None,
                            after: str | None = None) -> BacktestRunConnection:
        ctx = info.context
        try:
            page = await ctx.read.run_async(backtests.backtest_runs, ctx.user_id,
                                            page_size(first), after)
        except InvalidCursorError as error:
            raise cursor_error(error) from None
        edges = [BacktestRunEdge(cursor=c, node=BacktestRun.from_row(r))
                 for r, c in zip(page.rows, page.cursors, strict=True)]
        return BacktestRunConnection(edges=edges, page_info=PageInfo(
            has_next_page=page.has_next, end_cursor=page.end_cursor))

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Up to 10 of your runs side by side, in the order asked (null for an id not yours)"))
    async def compare_backtests(self, info: Info,
                                ids: list[strawberry.ID]) -> list[BacktestRun | None]:
        if len(ids) > MAX_COMPARED:
            raise GraphQLError(f"compare at most {MAX_COMPARED} runs", extensions={
                "code": "TOO_MANY_IDS", "field": "ids"})
        return [await visible(info, i) for i in ids]
