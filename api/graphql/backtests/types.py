"""Backtests run by the server: a run's status and progress, its summary (the keys of
``tradetape backtest --json``), deals and exact equity curve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from api.graphql.bots.types import DcaConfig
from api.graphql.common import Errors, PageInfo, when
from api.graphql.scalars import JSON

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_time(ms: int | None) -> datetime | None:
    return None if ms is None else EPOCH + timedelta(milliseconds=ms)


def plain(value: Any) -> Any:
    """A summary value as ``backtest --json`` prints it (Decimals as strings)."""
    return str(value) if isinstance(value, Decimal) else value


@strawberry.type(description="One deal of a backtest (times: the candle it happened in)")
class BacktestDeal:
    id: strawberry.ID
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    safety_orders_used: int
    entry_price: Decimal | None
    average_entry: Decimal | None
    exit_price: Decimal | None
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> BacktestDeal:
        return cls(id=strawberry.ID(row["id"]), opened_at=ms_time(row["opened"]),
                   closed_at=ms_time(row["closed"]), close_reason=row["reason"],
                   safety_orders_used=row["safety_orders"], entry_price=row["entry"],
                   average_entry=row["avg_entry"], exit_price=row.get("exit"),
                   realized_pnl=row.get("pnl"), unrealized_pnl=row.get("unrealized_pnl"))


@strawberry.type(description="Exact equity (realized + the open deal at the close) at a candle")
class BacktestEquityPoint:
    time: datetime
    equity: Decimal


@strawberry.type(description="How far a run has got: candles walked of its total")
class BacktestProgress:
    run_id: strawberry.ID
    status: str = strawberry.field(description="queued, running, completed, interrupted "
                                   "or failed")
    candles_done: int
    candles_total: int
    fraction: Decimal = strawberry.field(description="candlesDone / candlesTotal, 0 to 1")
    error_code: str | None = None


@strawberry.type(description="A backtest the server ran (or is running) for you")
class BacktestRun:
    id: strawberry.ID
    status: str = strawberry.field(description="running, completed, interrupted or failed")
    requested_at: datetime
    finished_at: datetime | None
    candles_file: str
    pair: str
    error_code: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BacktestRun:
        return cls(id=strawberry.ID(row["run_id"]), status=row["status"],
                   requested_at=when(row["requested_at"]), finished_at=when(
                       row["finished_at"]), candles_file=row["candles_file"],
                   pair=row["pair"], error_code=row["failure_code"])

    @strawberry.field(description="The figures of `tradetape backtest --json` (same keys, "
                      "Decimals as strings), once the run completed")
    async def summary(self, info: Info) -> JSON | None:
        result = await _result(info, self)
        if result is None:
            return None
        run = await info.context.loaders.stored_backtests.load(str(self.id))
        shown = {k: plain(v) for k, v in result.summary.items()}
        shown["run_id"] = str(self.id)
        if run is not None and run.period is not None:
            shown["from_ms"], shown["to_ms"] = run.period
        return shown

    @strawberry.field(description="The configuration it ran, as bots show theirs")
    async def config(self, info: Info) -> DcaConfig | None:
        run = await info.context.loaders.stored_backtests.load(str(self.id))
        return None if run is None else DcaConfig.of(run.config)

    @strawberry.field(description="Closed deals, then the deal still open at the end")
    async def deals(self, info: Info) -> list[BacktestDeal]:
        result = await _result(info, self)
        if result is None:
            return []
        rows = [*result.deals, *([result.open_deal] if result.open_deal else [])]
        return [BacktestDeal.of(r) for r in rows]

    @strawberry.field(description="Exact equity at about 500 evenly spaced candles and the "
                      "last one")
    async def equity_curve(self, info: Info) -> list[BacktestEquityPoint]:
        result = await _result(info, self)
        if result is None:
            return []
        return [BacktestEquityPoint(time=ms_time(ms), equity=e)
                for ms, e in result.equity_points or ()]


async def _result(info: Info, run: BacktestRun) -> Any:
    if run.status != "completed":
        return None
    return await info.context.loaders.backtest_results.load(str(run.id))


@strawberry.type
class BacktestRunEdge:
    cursor: str
    node: BacktestRun


@strawberry.type
class BacktestRunConnection:
    edges: list[BacktestRunEdge]
    page_info: PageInfo


@strawberry.type
class BacktestErrors(Errors):
    """Why a backtest was refused: ``code`` is the first error's (INVALID_CONFIG,
    CANDLE_FILE_NOT_ALLOWED, CANDLE_FILE_NOT_FOUND, INVALID_NUMBER, OUT_OF_RANGE...)."""

RunBacktestResult = Annotated[BacktestRun | BacktestErrors,
                              strawberry.union("RunBacktestResult")]
