"""Tables whose rows are replaced again and again (each scope's latest minute, bots'
tallies) leave room on their pages on PostgreSQL: a replaced row's new version is written
beside the old one with no new index entry (a HOT update), where filled pages sent every
new version to another page and an entry into each index. A table made before keeps its
rows and gets the room from the next start on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from application.settings import parse_database_url, prepare
from projections.equity import EQ_LATEST, Equity
from projections.store import PostgresViewStore
from projections.tables import Changes

SCOPES = 2_000


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresViewStore]:
    database = parse_database_url(postgres_url)
    prepare(database)
    store = PostgresViewStore(database.env)
    yield store
    store.close()


def _register(store: PostgresViewStore) -> None:
    store.register(Equity.name, "Trading", Equity.tables, Equity().schema())


def _write_latest(store: PostgresViewStore, minute: str) -> None:
    """Every scope's latest minute written as a batch writes it."""
    out = Changes(Equity.tables)
    out.upsert_values(EQ_LATEST, [("bot", f"b{n:05d}", minute) for n in range(SCOPES)])
    with store.transaction() as cur:
        store.write(cur, out.freeze())


def _pages(store: PostgresViewStore) -> dict[str, int]:
    """The page each scope's row is on."""
    return {scope_id: int(block) for scope_id, block in store.query(
        f"SELECT scope_id, split_part(trim(both '()' from ctid::text), ',', 1) "
        f"FROM {store.q(EQ_LATEST.name)}")}


def _fillfactor(store: PostgresViewStore) -> list[str]:
    return store.query("SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON "
                       "n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?",
                       (store.schema, EQ_LATEST.name))[0][0] or []


def test_each_scopes_latest_minute_replaced_stays_on_its_page(store):
    _register(store)
    _write_latest(store, "2026-01-01T00:00:00+00:00")
    pages = _pages(store)
    _write_latest(store, "2026-01-01T00:01:00+00:00")
    assert _pages(store) == pages  # (filled pages sent each to another)
    rows = store.select(EQ_LATEST)
    assert len(rows) == SCOPES
    assert {r["minute"] for r in rows} == {"2026-01-01T00:01:00+00:00"}


def test_a_table_made_before_gets_its_room_at_the_next_start_rows_kept(store):
    _register(store)
    with store.transaction() as cur:  # as a version before the fillfactor made it
        cur.execute(f"ALTER TABLE {store.q(EQ_LATEST.name)} RESET (fillfactor)")
    _write_latest(store, "2026-01-01T00:00:00+00:00")
    assert _fillfactor(store) == []
    before = store.select(EQ_LATEST, order="scope_id")

    _register(store)  # the next start

    assert _fillfactor(store) == ["fillfactor=50"]
    assert store.select(EQ_LATEST, order="scope_id") == before
    made_before = _pages(store)
    _write_latest(store, "2026-01-01T00:01:00+00:00")  # onto new pages, filled to half
    moved = {k: page for k, page in _pages(store).items() if page != made_before[k]}
    assert len(moved) > SCOPES * 0.9  # (a few had room left on the old pages' last)
    _write_latest(store, "2026-01-01T00:02:00+00:00")
    after = _pages(store)
    assert {k: after[k] for k in moved} == moved
