"""``backtestProgress(runId)``: the run's progress now, then as it moves (at most about
five times a second), ending with its last state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from decimal import Decimal
from uuid import UUID

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.backtests.queries import visible
from api.graphql.backtests.types import BacktestProgress
from api.graphql.permissions import IsAuthenticated

POLL_SECONDS = 0.2
ENDED = ("completed", "failed", "interrupted")


def _progress(run_id: str, status: str, done: int, total: int,
              code: str | None) -> BacktestProgress:
    fraction = Decimal(done) / Decimal(total) if total else Decimal(status == "completed")
    return BacktestProgress(run_id=strawberry.ID(run_id), status=status, candles_done=done,
                            candles_total=total, fraction=min(fraction, Decimal(1)),
                            error_code=code)


@strawberry.type
class BacktestSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated])
    async def backtest_progress(self, info: Info, run_id: strawberry.ID
                                ) -> AsyncGenerator[BacktestProgress, None]:
        ctx = info.context
        ctx.fresh_loaders()
        run = await visible(info, run_id)
        if run is None:
            raise GraphQLError(f"no backtest run {run_id}", extensions={"code": "NOT_FOUND"})
        jobs, last = ctx.runtime.backtests, None
        while True:
            state = jobs.progress.get(UUID(str(run.id)))
            if state is None:  # run by an earlier server process: what the view says
                yield _progress(str(run.id), run.status, 0, 0, run.error_code)
                return
            now = (state.status, state.done, state.total)
            if now != last:
                last = now
                yield _progress(str(run.id), *now, state.error_code)
            if state.status in ENDED:
                return
            await asyncio.sleep(POLL_SECONDS)
