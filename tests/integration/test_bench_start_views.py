"""scripts/bench_start.py seeds its views by copying the first user's for every other user
(a rebuild of a 10-million-event log takes hours): what it copies must be what a rebuild of
the whole log gives, table by table, row for row."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def every_view(url: str) -> dict[str, list[tuple]]:
    from application.settings import parse_database_url
    from projections.registry import PROJECTIONS
    from projections.store import TRACKING, open_view_store

    store = open_view_store(parse_database_url(url))
    try:
        views = {table.name: sorted(map(tuple, store.query(
            f"SELECT * FROM {store.q(table.name)}")), key=repr)
            for cls in PROJECTIONS.values() for table in cls.tables}
        views[TRACKING] = sorted(store.query(f"SELECT name, position FROM {store.q(TRACKING)}"))
        return views
    finally:
        store.close()


def test_the_copied_views_equal_a_rebuild_of_the_whole_log(postgres_url):
    sys.path.insert(0, str(SCRIPTS))
    import bench_start

    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.rebuild import rebuild
    from projections.registry import select
    from projections.store import open_view_store

    # four users: the first two rebuilt, one copied between, the last copied as the last
    written = bench_start.seed(postgres_url, bots=40, events=2400)
    copied = every_view(postgres_url)
    assert copied["projection_tracking"] and {p for _, p in copied["projection_tracking"]} == {
        written}
    assert len({row[1] for row in copied["fe_bots"]}) == 4  # four owners, ten bots each
    assert len(copied["fe_bots"]) == 40 and len(copied["audit_log"]) == written

    trading = open_trading(postgres_url)
    store = open_view_store(parse_database_url(postgres_url))
    try:
        rebuild(trading, store, select([]))
    finally:
        store.close()
        trading.close()
    rebuilt = every_view(postgres_url)
    for name in rebuilt:
        assert len(copied[name]) == len(rebuilt[name]), name
        for mine, theirs in zip(copied[name], rebuilt[name], strict=True):
            assert mine == theirs, (name, [(i, a, b) for i, (a, b) in enumerate(
                zip(mine, theirs, strict=True)) if a != b])
