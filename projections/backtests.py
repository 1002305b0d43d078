"""Backtests users asked the server for (``BacktestRequest``), with how each ended: the
list behind GraphQL ``backtestRuns``. A run's figures stay in its own events
(``BacktestRun.Completed``); this view holds who asked, on what, and the status.

Table ``backtest_runs``: one row per request, keyed by the run's id; ``status`` is
``running`` until the run records its end (``completed``, ``interrupted``) or the request
its failure (``failed``, with the code).
"""

from __future__ import annotations

from typing import Any

from projections.facts import Fact
from projections.framework import Projection, on
from projections.queries import Page, by_ids, decode_cursor, encode_cursor
from projections.store import ViewStore
from projections.tables import Changes, Row, table

BACKTEST_RUNS = table(
    "backtest_runs", key=("run_id",), indexes=(("owner_id", "requested_at"),),
    run_id="text", request_id="text", owner_id="text", requested_at="text",
    candles_file="text", pair="text", status="text", failure_code="text",
    finished_at="text")


class Backtests(Projection):
    name = "backtests"
    description = "backtests users asked the server for, and how each ended"
    tables = (BACKTEST_RUNS,)

    def __init__(self) -> None:
        self.running: dict[str, Row] = {}  # by run id
        self.requests: dict[str, str] = {}  # request id: run id, of the running ones

    def load(self, store: ViewStore, suffix: str = "") -> None:
        for row in store.select(BACKTEST_RUNS, "status = 'running'", suffix=suffix):
            self.running[row["run_id"]] = row
            self.requests[row["request_id"]] = row["run_id"]

    @on("BacktestRequest.Made")
    def _made(self, fact: Fact, out: Changes) -> None:
        row = {"run_id": fact.id_text("run_id"), "request_id": fact.oid,
               "owner_id": fact.text("owner_id"), "requested_at": fact.iso_time,
               "candles_file": fact.text("candles_file"), "pair": fact.text("pair"),
               "status": "running", "failure_code": None, "finished_at": None}
        self.running[row["run_id"]] = row
        self.requests[fact.oid] = row["run_id"]
        out.insert(BACKTEST_RUNS, row)

    @on("BacktestRequest.Failed")
    def _failed(self, fact: Fact, out: Changes) -> None:
        self._end(self.requests.get(fact.oid), "failed", fact, out, fact.text("code"))

    @on("BacktestRun.Completed", "BacktestRun.Interrupted")
    def _ended(self, fact: Fact, out: Changes) -> None:
        status = "completed" if fact.kind.endswith("Completed") else "interrupted"
        self._end(fact.oid, status, fact, out)

    def _end(self, run_id: str | None, status: str, fact: Fact, out: Changes,
             code: str | None = None) -> None:
        row = self.running.pop(run_id, None) if run_id else None
        if row is None:  # a run nobody asked the server for (the command line's), or ended
            return
        self.requests.pop(row["request_id"], None)
        row.update(status=status, failure_code=code, finished_at=fact.iso_time)
        out.upsert(BACKTEST_RUNS, row)


# --- reading --------------------------------------------------------------------------------

def backtest_runs(store: ViewStore, owner: str | None, first: int,
                  after: str | None = None) -> Page:
    """The owner's runs (every owner's for None), newest first."""
    where, params = [], []
    if owner is not None:
        where.append("owner_id = ?")
        params.append(owner)
    if after is not None:
        at, run_id = decode_cursor(after, 2)
        where.append("(requested_at < ? OR (requested_at = ? AND run_id < ?))")
        params += [at, at, run_id]
    rows = store.select(BACKTEST_RUNS, " AND ".join(where), params,
                        order="requested_at DESC, run_id DESC", limit=first + 1)
    shown = rows[:first]
    return Page(shown, len(rows) > first,
                [encode_cursor(r["requested_at"], r["run_id"]) for r in shown])


def runs_by_id(store: ViewStore, run_ids: list[str]) -> dict[str, Any]:
    return {r["run_id"]: r for r in by_ids(store, BACKTEST_RUNS, "run_id", run_ids)}
