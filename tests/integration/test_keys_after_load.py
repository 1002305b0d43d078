"""A rebuild on PostgreSQL makes its shadow tables without their primary keys and builds
each key once its table is filled, or before the first batch that does more than insert
into it. Every swapped-in table has its key; rows that break one end the rebuild with
``REBUILD_DUPLICATE_KEY`` and the tables in use stay as they were."""

from __future__ import annotations

from contextlib import closing

import pytest

from projections.framework import Projection
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import ProjectionError, Projector
from projections.tables import table
from tests.projection_stubs import backtest, candle_rows, catch_up, dump, saw_levels, view_store

ALL = list(PROJECTIONS.values())


def primary_keys(store) -> dict[str, tuple[str, ...]]:
    """The primary key's columns of every table of the store's schema, by table."""
    rows = store.query(
        "SELECT c.relname, a.attname FROM pg_constraint k JOIN pg_class c ON c.oid = "
        "k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN unnest(k.conkey) "
        "WITH ORDINALITY AS u(attnum, i) ON true JOIN pg_attribute a ON a.attrelid = c.oid "
        "AND a.attnum = u.attnum WHERE n.nspname = ? AND k.contype = 'p' "
        "ORDER BY c.relname, u.i", (store.schema,))
    keys: dict[str, tuple[str, ...]] = {}
    for name, column in rows:
        keys[name] = (*keys.get(name, ()), column)
    return keys


def rebuilt(url: str, trading, seed: str, **how) -> tuple:
    """A backtest's views caught up, then rebuilt (``how``: ``rebuild``'s options): the
    store, and its views before and after."""
    app = trading(url)
    backtest(app, candle_rows(saw_levels(2)), seed=seed)
    store = view_store(url)
    catch_up(app, store)
    before = dump(store)
    rebuild(app, store, ALL, **how)
    return store, before, dump(store)


def test_every_rebuilt_table_has_its_primary_key(postgres_url, trading):
    declared = {t.name: t.key for cls in ALL for t in cls.tables}
    store, before, after = rebuilt(postgres_url, trading, "keys", batch_size=100)
    with closing(store):
        assert {n: k for n, k in primary_keys(store).items() if n in declared} == declared
        assert after == before
        # the keys hold: a row of a key already there is refused
        (row,) = store.query(f"SELECT * FROM {store.q('audit_log')} LIMIT 1")
        with pytest.raises(Exception, match="duplicate key"):
            store.query(f"INSERT INTO {store.q('audit_log')} VALUES "
                        f"({', '.join('?' * len(row))})", row)


def test_a_split_rebuild_ends_with_every_key(postgres_url, trading):
    declared = {t.name: t.key for cls in ALL for t in cls.tables}
    store, before, after = rebuilt(postgres_url, trading, "keys split", batch_size=50,
                                   workers=2, split=True, database_url=postgres_url,
                                   probe_events=100)
    with closing(store):
        assert {n: k for n, k in primary_keys(store).items() if n in declared} == declared
        assert after == before


KINDS = table("kinds_seen", key=("kind",), kind="text", position="int")


class KindsSeen(Projection):
    """Each event kind's first position. ``broken``: its handler inserts the row again at
    every event of the kind (the bug a key catches); ``then_upsert``: and upserts the last
    event's row (a batch that does more than insert: the key is built there)."""

    name = "kinds_seen"
    tables = (KINDS,)
    reads_all = True
    broken = False
    then_upsert = False

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def apply(self, fact, out) -> None:
        if self.then_upsert and fact.kind == "BacktestRun.Completed":
            out.upsert(KINDS, {"kind": fact.kind, "position": fact.position})
        elif self.broken or fact.kind not in self.seen:
            self.seen.add(fact.kind)
            out.insert(KINDS, {"kind": fact.kind, "position": fact.position})


@pytest.mark.parametrize("then_upsert", [False, True], ids=["at the end", "at an upsert"])
def test_rows_that_break_a_key_end_the_rebuild_and_keep_the_tables_in_use(
        persistent_store_url, trading, monkeypatch, then_upsert):
    """On SQLite the shadow tables have their keys from the start: the batch that writes
    the second row of a key is refused, with the same code (before: a bare
    ``sqlite3.IntegrityError``)."""
    app = trading(persistent_store_url)
    backtest(app, candle_rows(saw_levels(2)), seed="duplicates")
    with closing(view_store(persistent_store_url)) as store:
        catch_up(app, store, [KindsSeen])
        before, tracking = dump(store, [KindsSeen]), store.tracking()["kinds_seen"]
        assert len(before["kinds_seen"]) > 3
        monkeypatch.setattr(KindsSeen, "broken", True)
        monkeypatch.setattr(KindsSeen, "then_upsert", then_upsert)
        finished = []
        finish = Projector.finish_shadow
        monkeypatch.setattr(Projector, "finish_shadow",
                            lambda self: finished.append(1) or finish(self))

        with pytest.raises(ProjectionError) as refused:
            rebuild(app, store, [KindsSeen], batch_size=20)

        assert refused.value.code == "REBUILD_DUPLICATE_KEY"
        if store.KEYS_AFTER_LOAD:
            assert finished == ([] if then_upsert else [1])  # where the key was built
        else:
            assert finished == []  # refused at the batch that wrote it
        assert "kinds_seen" in refused.value.message
        assert dump(store, [KindsSeen]) == before
        assert store.tracking()["kinds_seen"] == tracking
        monkeypatch.setattr(KindsSeen, "broken", False)
        monkeypatch.setattr(KindsSeen, "then_upsert", False)
        rebuild(app, store, [KindsSeen], batch_size=20)  # the leftovers dropped: no clash
        assert dump(store, [KindsSeen]) == before
