"""A server started by a newer version finds views an older version made: it rebuilds them
from the events and starts, instead of refusing until an operator steps in."""

from __future__ import annotations

from contextlib import contextmanager

from application.bootstrap import _InProcessReadModels
from application.settings import parse_database_url
from tests.projection_stubs import (
    a_day_of_trading,
    backtest,
    candle_rows,
    catch_up,
    dump,
    saw_levels,
    view_store,
)


def caught_up(app, url: str):
    """``app`` with a backtest's events, and its views caught up: the store and its rows."""
    backtest(app, candle_rows(saw_levels(3)), "upgrade")
    store = view_store(url)
    catch_up(app, store)
    return app, store, dump(store)


def test_views_of_another_shape_are_rebuilt_when_the_server_starts(persistent_store_url,
                                                                  trading, capsys):
    app, store, expected = caught_up(trading(persistent_store_url), persistent_store_url)
    # What an older version left: the bots view without a column this one has.
    with store.transaction() as cur:
        store.execute(cur, f"ALTER TABLE {store.q('fe_bots')} DROP COLUMN deals_cancelled")
        store.execute(cur, f"UPDATE {store.q('projection_tracking')} SET schema_hash = 'older' "
                           "WHERE name = 'frontend'")
    store.close()

    models = _InProcessReadModels(app, parse_database_url(persistent_store_url))
    try:
        assert dump(models.store) == expected
        assert models.lag() == {name: 0 for name in models.lag()}
        assert "rebuilding: frontend" in capsys.readouterr().err
    finally:
        models.close()


def test_revision_1_equity_is_upgraded_in_place_not_rebuilt(persistent_store_url, trading,
                                                           capsys):
    """Equity's revision 2 only adds ``equity_latest`` (each scope's latest minute): a
    server finding revision 1's tables fills it from the points in place, the same rows a
    rebuild makes, instead of reading the whole log again."""
    from projections.equity import EQ_LATEST, Equity
    from projections.tables import schema_hash

    app, store, expected = caught_up(trading(persistent_store_url), persistent_store_url)
    assert expected["equity_latest"]  # a backtest with points: something to make again
    older = schema_hash(tuple(t for t in Equity.tables if t is not EQ_LATEST), 1)
    left_by_older(store, "equity", older, f"DROP TABLE {store.q('equity_latest')}")

    with upgraded_in_place(app, persistent_store_url, capsys, "equity") as models:
        assert dump(models.store) == expected


def left_by_older(store, name: str, older: str, undo: str) -> None:
    """The store as an older version left ``name``'s tables: ``undo`` run on them, their
    schema hash ``older``; closed."""
    with store.transaction() as cur:
        store.execute(cur, undo)
        store.execute(cur, f"UPDATE {store.q('projection_tracking')} SET schema_hash = ? "
                           "WHERE name = ?", (older, name))
    store.close()


@contextmanager
def upgraded_in_place(app, url: str, capsys, name: str):
    """A server's read models started on ``url``, having upgraded ``name`` in place (not
    rebuilt it), every projection at the log's head."""
    models = _InProcessReadModels(app, parse_database_url(url))
    try:
        assert models.lag() == {name: 0 for name in models.lag()}
        said = capsys.readouterr().err
        assert f"upgraded in place: {name}" in said and "rebuilding" not in said
        yield models
    finally:
        models.close()


def test_an_audit_log_made_before_the_actor_index_gets_it_in_place(persistent_store_url,
                                                                  trading, capsys):
    """Session 18's audit log lacks only the actor's index: built on the live table at
    start, where a rebuild read the whole log again (and compared the chains)."""
    from projections.audit import _BEFORE_ACTOR_INDEX, AUDIT_LOG, AuditLog
    from projections.tables import schema_hash

    app = trading(persistent_store_url)
    a_day_of_trading(app)  # events of other actors than the engine's
    app, store, expected = caught_up(app, persistent_store_url)
    older = schema_hash((_BEFORE_ACTOR_INDEX,), AuditLog.revision)
    (generation,), = store.query(f"SELECT generation FROM {store.q('projection_tracking')} "
                                 "WHERE name = 'audit'")
    (index,) = [t for t in store.index_statements(AUDIT_LOG, "", generation) if "actor" in t]
    name = index.split('"')[1]
    postgres = store.kind == "postgres"
    left_by_older(store, "audit", older, f"DROP INDEX {store.q(name) if postgres else name}")

    with upgraded_in_place(app, persistent_store_url, capsys, "audit") as models:
        assert dump(models.store) == expected
        assert models.store.query(
            "SELECT 1 FROM pg_indexes WHERE schemaname = ? AND indexname = ?"
            if postgres else "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
            (models.store.schema, name) if postgres else (name,))


def _open_tables():
    from projections.frontend_tables import FE_DEALS, FE_ORDERS
    from projections.pnl import PNL_DEALS

    return FE_DEALS, FE_ORDERS, PNL_DEALS


def test_views_made_before_the_open_rows_indexes_get_them_in_place(persistent_store_url,
                                                                   trading, capsys):
    """The tables whose open rows a start reads back (fe_orders' live orders, fe_deals'
    and pnl_deals' open deals) carry an index of just those rows: a start no longer scans
    every deal and order ever closed (1.7 GB at 10,000 bots and 10 million events: ~1 s
    of PostgreSQL on both cores at every start). Views made before it get it at the next
    start, their rows kept (no rebuild: an access path is not shape)."""
    app, store, expected = caught_up(trading(persistent_store_url), persistent_store_url)
    postgres = store.kind == "postgres"
    (generation,), = store.query(f"SELECT generation FROM {store.q('projection_tracking')} "
                                 "WHERE name = 'frontend'")
    names = [store.open_index_name(t, generation) for t in _open_tables()]
    assert all(store.index_exists(name) for name in names)  # made with the tables
    with store.transaction() as cur:  # as a version before them left the views
        for name in names:
            store.execute(cur, f"DROP INDEX {store.q(name) if postgres else name}")
    store.close()

    models = _InProcessReadModels(app, parse_database_url(persistent_store_url))
    try:
        assert "rebuilding" not in capsys.readouterr().err
        assert models.lag() == {name: 0 for name in models.lag()}
        assert dump(models.store) == expected
        assert [models.store.index_exists(name) for name in names] == [True] * 3
    finally:
        models.close()


def test_a_starts_loads_of_open_rows_can_use_their_index(postgres_url, trading):
    """PostgreSQL uses a partial index only for a query whose condition implies the
    index's: the queries the projections' loads send are checked against the plans (seq
    scans priced out, so only an index the condition matches can serve them)."""
    from projections.frontend import FrontEnd
    from projections.pnl import Pnl

    _, store, _ = caught_up(trading(postgres_url), postgres_url)
    sent: list[str] = []
    query = store.query
    store.query = lambda text, params=(): (sent.append(text), query(text, params))[1]
    try:
        FrontEnd().load(store)
        Pnl().load(store)
    finally:
        store.query = query
    opens = {t.name: [text for text in sent if f"{store.q(t.name)} WHERE" in text]
             for t in _open_tables()}
    assert all(len(texts) == 1 for texts in opens.values()), opens
    with store.transaction() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        for name, (text,) in opens.items():
            cur.execute(f"EXPLAIN {text}")
            plan = str(cur.fetchall())
            assert "ox_" + name in plan, plan
    store.close()
