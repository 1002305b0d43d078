"""A server started by a newer version finds views an older version made: it rebuilds them
from the events and starts, instead of refusing until an operator steps in."""

from __future__ import annotations

from application.bootstrap import _InProcessReadModels
from application.settings import parse_database_url
from tests.projection_stubs import backtest, candle_rows, catch_up, dump, saw_levels, view_store


def test_views_of_another_shape_are_rebuilt_when_the_server_starts(persistent_store_url,
                                                                  trading, capsys):
    app = trading(persistent_store_url)
    backtest(app, candle_rows(saw_levels(3)), "upgrade")
    store = view_store(persistent_store_url)
    catch_up(app, store)
    expected = dump(store)
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

    app = trading(persistent_store_url)
    backtest(app, candle_rows(saw_levels(3)), "upgrade")
    store = view_store(persistent_store_url)
    catch_up(app, store)
    expected = dump(store)
    assert expected["equity_latest"]  # a backtest with points: something to make again
    older = schema_hash(tuple(t for t in Equity.tables if t is not EQ_LATEST), 1)
    with store.transaction() as cur:  # what session 14's version left
        store.execute(cur, f"DROP TABLE {store.q('equity_latest')}")
        store.execute(cur, f"UPDATE {store.q('projection_tracking')} SET schema_hash = ? "
                           "WHERE name = 'equity'", (older,))
    store.close()

    models = _InProcessReadModels(app, parse_database_url(persistent_store_url))
    try:
        assert dump(models.store) == expected
        assert models.lag() == {name: 0 for name in models.lag()}
        said = capsys.readouterr().err
        assert "upgraded in place: equity" in said and "rebuilding" not in said
    finally:
        models.close()
