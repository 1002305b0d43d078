"""Recorded time vs market time on a real store: each event keeps its own time and gains the
time the store recorded it (a column beside the stored state, filled by the database), which
`--as-of` and `--since` ask about; `--market-as-of` asks about the events' own time."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds, SteppingClock
from api.cli import main
from application.bootstrap import open_trading
from application.settings import parse_database_url, prepare
from application.trading import Trading
from projections.audit import AuditLog
from projections.runner import Projector
from projections.store import open_view_store
from tests.integration.conftest import T0
from tests.projection_stubs import backtest, candle_rows, recorded_now, saw_levels


def run_json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def recorded_times(url: str) -> list[tuple[int, str | None]]:
    """``(position, recorded_at as text)`` of every stored event, straight from the table."""
    database = parse_database_url(url)
    if database.kind == "sqlite":
        with sqlite3.connect(database.sqlite_path) as conn:
            return conn.execute("SELECT rowid, recorded_at FROM stored_events "
                                "ORDER BY rowid").fetchall()
    store = open_view_store(database)
    try:
        return [(p, None if t is None else t.isoformat()) for p, t in store.query(
            f"SELECT notification_id, recorded_at FROM {store.q('trading_events')} "
            "ORDER BY notification_id")]
    finally:
        store.close()


def library_trading(url: str) -> Trading:
    """The Trading application on the library's own recorders: a store as a version before
    recorded times made it (no ``recorded_at`` column)."""
    database = parse_database_url(url)
    prepare(database)  # e.g. the PostgreSQL schema
    env = dict(database.env)
    return Trading(clock=SteppingClock(T0), ids=SequentialIds("old"), env=env)


def test_every_event_gains_the_time_it_was_recorded_beside_its_own(persistent_store_url,
                                                                  trading, capsys):
    began = datetime.now(UTC)
    app = trading(persistent_store_url)  # its clock stands in 2024: the events' own time
    account = app.open_account(owner_id="alice", exchange="binance", quote_asset="USDT")
    app.deposit(account, "USDT", Decimal("10"))
    backtest(app, candle_rows(saw_levels(2)), seed="r")  # market times of its candles
    ended = datetime.now(UTC)

    rows = recorded_times(persistent_store_url)
    times = [datetime.fromisoformat(t) for _, t in rows]
    assert len(rows) > 10 and all(began - timedelta(seconds=1) <= t <= ended for t in times)
    assert times == sorted(times)  # recorded in log order
    assert main(["projections", "run", "audit", "--once", "--database",
                 persistent_store_url]) == 0
    capsys.readouterr()
    lines = [json.loads(line) for line in _export(capsys, persistent_store_url)]
    assert [datetime.fromisoformat(line["recorded_at"]) for line in lines] == times
    assert lines[0]["at"] == T0.isoformat()  # the event's own time, kept
    assert main(["audit", "verify", "--database", persistent_store_url]) == 0


def _export(capsys, url: str, *options: str) -> list[str]:
    assert main(["audit", "export", *options, "--database", url]) == 0
    return capsys.readouterr().out.splitlines()


def test_as_of_is_the_log_up_to_the_last_event_recorded_by_then(persistent_store_url, trading,
                                                                capsys):
    app = trading(persistent_store_url)
    account = app.open_account(owner_id="alice", exchange="binance", quote_asset="USDT")
    app.deposit(account, "USDT", Decimal("100"))
    first = recorded_now()
    head_then = app.recorder.max_notification_id()
    app.deposit(account, "USDT", Decimal("5"))
    # A backtest whose candles come before everything above, recorded after it.
    early = int((T0 - timedelta(days=30)).timestamp() * 1000)
    backtest(app, candle_rows(saw_levels(2), start_ms=early), seed="early")

    then = run_json(capsys, "balances", "--as-of", first, "--json", "--include-backtests",
                    "--database", persistent_store_url)
    assert then["position"] == head_then
    assert [(r["owner_id"], r["asset"], r["total"]) for r in then["balances"]] == [
        ("alice", "USDT", "100")]
    since = _export(capsys, persistent_store_url, "--since", first)
    assert [json.loads(line)["position"] for line in since] == list(
        range(head_then + 1, app.recorder.max_notification_id() + 1))

    # --market-as-of asks about the events' own time: the backtest's candles come first.
    market = run_json(capsys, "pnl", "--market-as-of", T0.isoformat(), "--json",
                      "--include-backtests", "--database", persistent_store_url)
    assert [b["owner_id"] for b in market["bots"]] == ["backtest"]
    both = run_json(capsys, "pnl", "--market-as-of", T0.isoformat(), "--as-of", first,
                    "--json", "--include-backtests", "--database", persistent_store_url)
    assert both["bots"] == []


@pytest.mark.parametrize("argv, code", [
    (["pnl", "--as-of"], "AS_OF_IN_FUTURE"),
    (["balances", "--as-of"], "AS_OF_IN_FUTURE"),
    (["pnl", "--market-as-of"], "AS_OF_IN_FUTURE"),
    (["audit", "export", "--since"], "SINCE_IN_FUTURE"),
])
def test_a_time_to_come_is_refused_in_one_line(tmp_path, capsys, argv, code):
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()

    assert main([*argv, later, "--database", url]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: {code}: ") and err.count("\n") == 1, err


def test_a_store_made_before_recorded_times_gains_the_column_and_keeps_its_answers(
        persistent_store_url, capsys):
    old = library_trading(persistent_store_url)
    try:
        account = old.open_account(owner_id="bob", exchange="binance", quote_asset="USDT")
        old.deposit(account, "USDT", Decimal("7"))  # own time T0 (+ steps)
        legacy_head = old.recorder.max_notification_id()
    finally:
        old.close()

    app = open_trading(persistent_store_url, clock=SteppingClock(T0 + timedelta(days=1)),
                       ids=SequentialIds("new"))
    try:
        app.deposit(account, "USDT", Decimal("3"))
        rows = recorded_times(persistent_store_url)
    finally:
        app.close()

    # Rows recorded before the upgrade keep NULL ("recorded before this version"); new
    # rows are timed. An as-of before any recorded row falls back on the events' own time.
    assert [t is None for _, t in rows] == [True] * legacy_head + [False]
    total = lambda r: [(b["owner_id"], b["total"]) for b in r["balances"]]  # noqa: E731
    before_upgrade = (T0 + timedelta(hours=1)).isoformat()
    assert total(run_json(capsys, "balances", "--as-of", before_upgrade, "--json",
                          "--database", persistent_store_url)) == [("bob", "7")]
    assert total(run_json(capsys, "balances", "--as-of", recorded_now(), "--json",
                          "--database", persistent_store_url)) == [("bob", "10")]


def test_the_audit_view_keeps_the_recorded_time_and_the_events_own(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("a"))
    store = open_view_store(parse_database_url(url))
    try:
        backtest(app, candle_rows(saw_levels(2)), seed="a")
        Projector(app, store, [AuditLog()]).catch_up()
        rows = store.query("SELECT recorded_at, at FROM audit_log ORDER BY position")
    finally:
        store.close()
        app.close()
    recorded = {datetime.fromisoformat(r).date() for r, _ in rows}
    assert recorded == {datetime.now(UTC).date()} or len(recorded) == 2  # around midnight
    assert all(at.startswith("2023-11-14T") for _, at in rows)  # the candles' own times


def test_the_stored_events_are_the_bytes_the_library_s_own_recorder_stores(tmp_path):
    """The recorded time sits beside the stored event, never in it: the same commands give
    the same rows through our recorder as through the library's."""
    stored = []
    for name, opener in (("ours", open_trading), ("library", None)):
        url = f"sqlite:///{tmp_path / name}.sqlite"
        app = (library_trading(url) if opener is None else
               open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("old")))
        try:
            account = app.open_account(owner_id="carol", exchange="binance",
                                       quote_asset="USDT")
            app.deposit(account, "USDT", Decimal("1.50"))
            backtest(app, candle_rows(saw_levels(2)), seed="same")
        finally:
            app.close()
        with sqlite3.connect(tmp_path / f"{name}.sqlite") as conn:
            stored.append(conn.execute("SELECT rowid, originator_id, originator_version, "
                                       "topic, state FROM stored_events ORDER BY rowid"
                                       ).fetchall())
    assert len(stored[0]) > 10 and stored[0] == stored[1]


def test_pnl_of_one_stored_backtest_run_by_its_id(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("runs"))
    try:
        first = backtest(app, candle_rows(saw_levels(3)), seed="first")
        backtest(app, candle_rows(saw_levels(2)), seed="second")
    finally:
        app.close()

    report = run_json(capsys, "pnl", "--backtest", str(first.run_id), "--as-of",
                      recorded_now(), "--json", "--database", url)

    assert [b["bot_id"] for b in report["bots"]] == [str(first.bot_id)]
    assert report["deals_closed"] == first.summary["deals_closed"] > 0
    assert main(["pnl", "--backtest", str(first.bot_id), "--database", url]) == 2
    assert capsys.readouterr().err.startswith("error: UNKNOWN_BACKTEST: ")
