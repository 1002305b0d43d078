"""Backtests a user asks the server for (GraphQL ``runBacktest``): recorded as a
:class:`BacktestRequest` at once, run in the background one at a time, with their progress
in memory for the subscription that watches them.

The run records its events in the server's log exactly as ``tradetape backtest --store``
does (owned by the backtest, so no user's views count it), on a stored series named from the
candle library only. Results with deals and the equity curve are kept for the latest runs; an
older run's are made again by re-running it (same seed, same candles: the same deals).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.backtest_requests import BacktestRequest
from domain.dca import DcaConfig
from domain.errors import DomainError
from domain.ports import IdSource

log = logging.getLogger("tradetape.backtests")
KEEP_RESULTS = 20
EQUITY_POINTS = 500


@dataclass
class Progress:
    run_id: UUID
    owner_id: str
    done: int = 0
    total: int = 0
    status: str = "queued"  # queued, running, completed, failed
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class BacktestInput:
    config: DcaConfig
    candles_file: str
    pair: str
    period: tuple[int | None, int | None]
    fee_rate: Decimal
    balance: Decimal | None


class BacktestJobs:
    def __init__(self, trading: Any, ids: IdSource, run: Callable[..., Any],
                 run_id_of: Callable[[str], UUID], rerun: Callable[[UUID], Any],
                 workers: int = 1):
        """``run(input, seed, on_progress)``: the result of a run recorded in ``trading``;
        ``run_id_of(seed)``: the id a run of that seed gets; ``rerun(run_id)``: a stored
        run's result made again in memory."""
        self.trading, self.ids = trading, ids
        self._run, self._run_id_of, self._rerun = run, run_id_of, rerun
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backtest")
        self._lock = threading.Lock()
        self.progress: dict[UUID, Progress] = {}
        self._results: OrderedDict[UUID, Any] = OrderedDict()
        self._stopping = threading.Event()

    def submit(self, owner_id: str, asked: BacktestInput) -> UUID:
        """Record the request and queue the run; its id at once."""
        seed = self.ids.new_id().hex
        run_id = self._run_id_of(seed)
        request = BacktestRequest.make(
            self.ids.new_id(), self.trading.cause(owner_id), owner_id=owner_id, run_id=run_id,
            candles_file=asked.candles_file, pair=asked.pair, period=asked.period,
            fee_rate=asked.fee_rate, balance=asked.balance, config=asked.config)
        self.trading.save_all(request)
        with self._lock:
            self.progress[run_id] = Progress(run_id, owner_id)
        self._pool.submit(self._work, request, asked, seed)
        return run_id

    def _work(self, request: BacktestRequest, asked: BacktestInput, seed: str) -> None:
        state = self.progress[request.run_id]
        state.status = "running"

        def advance(done: int, total: int) -> None:
            state.done, state.total = done, total
            if self._stopping.is_set():
                raise DomainError("the server is stopping", code="SERVER_STOPPING")

        try:
            result = self._run(asked, seed, advance)
        except Exception as error:  # recorded on the request; the server goes on
            code = error.code if isinstance(error, DomainError) else "BACKTEST_FAILED"
            message = error.message if isinstance(error, DomainError) else "the run failed"
            if not isinstance(error, DomainError):
                log.exception("backtest %s failed", request.run_id)
            state.status, state.error_code, state.error_message = "failed", code, message
            request.fail(self.trading.cause(request.owner_id), code, message)
            self.trading.save_all(request)
            return
        self._keep(request.run_id, result)
        state.done = state.total = len(result.candles)
        state.status = "completed"

    def _keep(self, run_id: UUID, result: Any) -> None:
        with self._lock:
            self._results[run_id] = result
            while len(self._results) > KEEP_RESULTS:
                self._results.popitem(last=False)

    def result(self, run_id: UUID) -> Any:
        """A completed run's result (deals, equity points), made again when not kept."""
        with self._lock:
            found = self._results.get(run_id)
        if found is None:
            found = self._rerun(run_id)
            self._keep(run_id, found)
        return found

    def close(self) -> None:
        """Queued runs are dropped; one under way stops at its next step (recorded as
        interrupted)."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
