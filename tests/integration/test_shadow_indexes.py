"""A rebuild indexes its tables once they are filled (on PostgreSQL on two connections side
by side): the swapped-in tables carry every secondary index their projection declares."""

from __future__ import annotations

import re
from contextlib import closing

import psycopg
import pytest

from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.shadow_indexes import build_side_by_side
from tests.projection_stubs import backtest, candle_rows, catch_up, dump, saw_levels, view_store


def indexed_columns(store) -> set[tuple[str, tuple[str, ...]]]:
    """(table, its columns) of every secondary index the store's live tables have."""
    if store.kind == "postgres":
        rows = store.query("SELECT indexname, tablename, indexdef FROM pg_indexes "
                           "WHERE schemaname = ?", (store.schema,))
    else:
        rows = store.query("SELECT name, tbl_name, sql FROM sqlite_master "
                           "WHERE type = 'index' AND sql IS NOT NULL")
    found = set()
    for name, table, text in rows:
        if not name.startswith("ix_"):  # primary keys
            continue
        columns = re.search(r"\(([^()]*)\)\s*$",
                            re.sub(r"\s+WHERE .*$", "", text)).group(1)  # (a partial index's)
        found.add((table, tuple(c.strip().strip('"') for c in columns.split(","))))
    return found


def test_a_rebuild_swaps_in_tables_with_every_declared_index(store_url, trading):
    app = trading(store_url)
    backtest(app, candle_rows(saw_levels(2)), seed="indexes")
    declared = {(t.name, cols) for cls in PROJECTIONS.values() for t in cls.tables
                for cols in t.indexes}
    with closing(view_store(store_url)) as store:
        catch_up(app, store)
        before = dump(store)

        rebuild(app, store, list(PROJECTIONS.values()), batch_size=100)

        assert indexed_columns(store) == declared
        assert dump(store) == before
        rebuild(app, store, list(PROJECTIONS.values()), batch_size=100)  # no name clashes
        assert indexed_columns(store) == declared


def test_an_index_that_cannot_be_built_fails_the_build_and_leaves_the_store_usable(
        postgres_url, trading):
    trading(postgres_url)
    with closing(view_store(postgres_url)) as store:
        store.conn.execute(f"CREATE TABLE {store.q('copy16_t')} (a TEXT)")
        with pytest.raises(psycopg.errors.UndefinedColumn):
            build_side_by_side(store, [
                ("copy16_t", f"CREATE INDEX ix_ok ON {store.q('copy16_t')} (a)"),
                ("copy16_t", f"CREATE INDEX ix_bad ON {store.q('copy16_t')} (no_such_column)"),
            ])
        assert store.query("SELECT 1") == [(1,)]
