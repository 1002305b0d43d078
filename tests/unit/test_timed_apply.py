"""A rebuild's measured batches (``Projector.timed``: the breakdown, and what a rebuild shares
processes out by) take the real path's steps: the same rows decoded, the same rows written."""

from __future__ import annotations

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from projections.registry import PROJECTIONS
from projections.runner import Projector
from projections.store import SQLiteViewStore
from tests.integration.conftest import T0
from tests.projection_stubs import a_day_of_trading, backtest, candle_rows, saw_levels


class CountingDecoder:
    """The projector's decoder, noting the position of every row it decodes: the rows
    whose topic some projection reads (``dispatch`` never parses the others)."""

    def __init__(self, decode) -> None:
        self.decode, self.decoded, self.routed = decode, [], {}

    def __call__(self, row):
        self.decoded.append(row[0])
        return self.decode(row)

    def dispatch(self, rows, route_of, known) -> None:
        rows = list(rows)

        def noting(topic: str):
            self.routed[topic] = route = route_of(topic)
            return route

        self.decode.dispatch(rows, noting, known)
        self.decoded += [row[0] for row in rows if self.routed.get(row[3]) is not None]

    def __getattr__(self, name: str):
        return getattr(self.decode, name)


def test_timed_batches_decode_and_write_what_the_real_path_does():
    app = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("app"))
    a_day_of_trading(app)
    backtest(app, candle_rows(saw_levels(2)), seed="parts")
    seen = {}
    try:
        for timed in (False, True):
            store = SQLiteViewStore(None)
            projections = [PROJECTIONS[n]() for n in ("pnl", "leaderboard", "backtests")]
            projector = Projector(app, store, projections, batch_size=50)
            projector.timed = timed
            projector.decode = counting = CountingDecoder(projector.decode)
            projector.start()
            projector.catch_up()
            rows = {t.name: store.select(t) for p in projections for t in p.tables}
            seen[timed] = counting.decoded, rows
            store.close()
    finally:
        app.close()
    (real, real_rows), (measured, measured_rows) = seen[False], seen[True]
    assert measured == real  # a row no projection here reads is not parsed: not counted
    assert measured_rows == real_rows
    assert len(real) < app.recorder.max_notification_id()
