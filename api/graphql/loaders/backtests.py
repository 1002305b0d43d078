"""Backtests: the view's rows, the stored runs (their events) and their results (deals and
equity: kept for the latest runs, else made again by re-running, on a worker thread)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from anyio import to_thread
from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import backtests


def backtest_rows(read: ReadSide) -> DataLoader[str, Any]:
    async def load(ids: list[str]) -> list[Any]:
        found = await read.run_async(backtests.runs_by_id, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


def stored_backtests(trading: Any) -> DataLoader[str, Any]:
    from domain.backtests import BacktestRun
    from domain.errors import NotFoundError

    def one(run_id: str) -> Any:
        try:
            return trading.load(UUID(run_id), BacktestRun)
        except NotFoundError:
            return None

    async def load(ids: list[str]) -> list[Any]:
        return await to_thread.run_sync(lambda: [one(i) for i in ids])

    return DataLoader(load_fn=load)


def backtest_results(jobs: Any) -> DataLoader[str, Any]:
    async def load(ids: list[str]) -> list[Any]:
        return await to_thread.run_sync(lambda: [jobs.result(UUID(i)) for i in ids])

    return DataLoader(load_fn=load)
