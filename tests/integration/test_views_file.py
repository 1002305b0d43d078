"""The read models of a SQLite store live in a file of their own beside the event store's
(``<file>.views``), so a projection's batch never holds the event store's write lock. They
stay disposable: a lost views file is rebuilt row for row, and views an earlier version kept
inside the event file are followed afresh into the new file, with the same rows."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SequentialIds, SteppingClock
from api.cli import main
from application.bootstrap import open_trading
from application.settings import parse_database_url
from projections.registry import PROJECTIONS
from projections.store import TRACKING, SQLiteViewStore, ViewStore
from tests.integration.conftest import T0
from tests.projection_stubs import a_day_of_trading, catch_up, dump, view_store

VIEW_TABLES = {table.name for cls in PROJECTIONS.values() for table in cls.tables}


@pytest.fixture
def filled(tmp_path) -> str:
    """A SQLite store with a day of trading in it."""
    url = f"sqlite:///{tmp_path / 'run.db'}"
    with closing(open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("views"))) as app:
        a_day_of_trading(app)
    return url


def tables_of(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }


def test_the_read_models_are_written_beside_the_event_file_not_into_it(filled, capsys):
    assert main(["projections", "run", "--once", "--database", filled]) == 0
    database = parse_database_url(filled)
    assert database.views_path == database.sqlite_path.with_name("run.db.views")
    assert VIEW_TABLES | {TRACKING} <= tables_of(database.views_path)
    assert tables_of(database.sqlite_path) & (VIEW_TABLES | {TRACKING}) == set()
    assert "stored_events" in tables_of(database.sqlite_path)
    capsys.readouterr()


def followed(url: str, store: ViewStore) -> dict[str, list[tuple]]:
    """Every projection caught up on ``store`` from the log of ``url``: its rows."""
    app = open_trading(url)
    try:
        catch_up(app, store)
        return dump(store)
    finally:
        store.close()
        app.close()


def test_a_lost_views_file_is_rebuilt_row_for_row(filled):
    database = parse_database_url(filled)
    before = followed(filled, view_store(filled))
    for path in database.sqlite_files:
        if path.name.startswith(database.views_path.name):
            path.unlink(missing_ok=True)
    assert not database.views_path.exists()
    assert followed(filled, view_store(filled)) == before and any(before.values())


def test_views_an_earlier_version_kept_in_the_event_file_come_out_the_same_in_their_own(filled):
    """The earlier layout (views inside the event file, the log read on the views'
    connection) and this one (the log read on the application's) give the same rows."""
    kept = followed(filled, SQLiteViewStore(parse_database_url(filled).sqlite_path))
    assert followed(filled, view_store(filled)) == kept and any(kept.values())


def another_store(url: str) -> str:
    with closing(open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("other"))) as app:
        account = app.open_account(owner_id="bob", exchange="binance", quote_asset="USDT")
        app.deposit(account, "USDT", Decimal("250"), actor="bob")
    return url


def test_views_of_a_deleted_event_file_are_not_shown_for_the_one_made_in_its_place(
    filled, tmp_path
):
    database = parse_database_url(filled)
    assert any(followed(filled, view_store(filled)).values())
    for path in database.sqlite_files[:3]:  # the event file (and its WAL), not the views
        path.unlink(missing_ok=True)
    assert database.views_path.exists()
    fresh = another_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    expected = followed(fresh, view_store(fresh))
    shown = followed(another_store(filled), view_store(filled))
    # The audit rows carry when each event was recorded (wall clock): compared apart.
    assert len(shown.pop("audit_log")) == len(expected.pop("audit_log"))
    assert shown == expected
