"""The audit log by actor: every actor's entries, newest first, page after page, on every
backend (the actor's index leaves the engine's rows out: a page of the engine's, nearly
every row, is found going back by position)."""

from __future__ import annotations

from projections.audit import AUDIT_LOG
from projections.audit_queries import audit_page
from tests.projection_stubs import (
    a_day_of_trading,
    backtest,
    candle_rows,
    catch_up,
    saw_levels,
    view_store,
)


def every_page(store, actor: str, first: int) -> list[int]:
    positions, after = [], None
    while True:
        page = audit_page(store, owner=None, actor=actor, first=first, after=after)
        positions += [row["position"] for row in page.rows]
        if not page.has_next:
            return positions
        after = page.cursors[-1]


def test_each_actors_entries_come_newest_first_page_after_page(store_url, trading):
    app = trading(store_url)
    backtest(app, candle_rows(saw_levels(1)), seed="actors")
    a_day_of_trading(app)
    store = view_store(store_url)
    catch_up(app, store)
    rows = store.query(f"SELECT position, actor FROM {store.q(AUDIT_LOG.name)}")
    actors = {actor for _, actor in rows}
    assert {"alice", "engine"} <= actors

    for actor in actors - {None}:
        expected = sorted((p for p, a in rows if a == actor), reverse=True)
        assert every_page(store, actor, first=3) == expected, actor
    assert audit_page(store, owner=None, actor="nobody").rows == []
