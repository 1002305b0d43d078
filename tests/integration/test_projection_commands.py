"""The read-model commands as a user runs them: projections run/status/rebuild, pnl,
balances and audit, on a SQLite store (and PostgreSQL where the behaviour differs)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SequentialIds, SteppingClock
from api.cli import main
from application.bootstrap import open_trading
from application.settings import parse_database_url
from tests.integration.conftest import T0
from tests.projection_stubs import (
    a_day_of_trading,
    backtest,
    candle_rows,
    recorded_now,
    saw_levels,
    view_store,
)

ROOT = Path(__file__).resolve().parents[2]
CANDLES = ROOT / "adapters" / "marketdata" / "data" / "binance_BTC_USDT-1m-2025-11.csv"
CONFIG = ROOT / "api" / "examples" / "dca_bot.json"


def run_json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'run.db'}"


@pytest.fixture
def filled(url) -> str:
    """A store with a day of trading and two backtests."""
    app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("cmd"))
    try:
        a_day_of_trading(app)
        backtest(app, candle_rows(saw_levels(4)), seed="one")
        backtest(app, candle_rows(saw_levels(3)[:-2]), seed="two")
    finally:
        app.close()
    return url


# --- acceptance -----------------------------------------------------------------------------


def test_pnl_after_a_rebuild_is_the_backtest_summary_exactly(url, capsys):
    summary = run_json(capsys, "backtest", "--candles", str(CANDLES), "--config", str(CONFIG),
                       "--store", url, "--json")
    assert main(["projections", "rebuild", "--database", url]) == 0
    capsys.readouterr()

    pnl = run_json(capsys, "pnl", "--database", url, "--json", "--include-backtests")
    users_pnl = run_json(capsys, "pnl", "--database", url, "--json")

    assert (users_pnl["bots"], users_pnl["deals_closed"]) == ([], 0)  # no user's bot
    assert summary["deals_closed"] > 10
    assert pnl["realized_pnl"] == summary["realized_pnl"]
    assert pnl["deals_closed"] == summary["deals_closed"]
    assert pnl["win_rate"] == summary["win_rate"]
    [bot] = pnl["bots"]
    assert (bot["realized_pnl"], bot["deals_closed"]) == (summary["realized_pnl"],
                                                          summary["deals_closed"])
    assert pnl["lag"] == 0


# --- audit ----------------------------------------------------------------------------------


def tamper(url: str, position: int, old: bytes, new: bytes) -> None:
    """Edit one stored event's bytes, as someone with write access to the file could."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        (state,) = conn.execute("SELECT state FROM stored_events WHERE rowid = ?",
                                (position,)).fetchone()
        assert old in state
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                     (state.replace(old, new, 1), position))


def test_audit_verify_passes_on_an_untouched_store(filled, capsys):
    main(["projections", "run", "audit", "--once", "--database", filled])
    capsys.readouterr()

    assert main(["audit", "verify", "--database", filled]) == 0
    assert "intact" in capsys.readouterr().out


def test_audit_verify_names_the_position_of_an_edited_event(filled, capsys):
    main(["projections", "run", "audit", "--once", "--database", filled])
    tamper(filled, 2, b"1000", b"9000")  # the deposit
    capsys.readouterr()

    code = main(["audit", "verify", "--database", filled])

    out = capsys.readouterr().out
    assert code == 1
    assert "position 2: differs in summary, hash" in out


def test_audit_verify_finds_an_edited_audit_row_and_a_deleted_event(filled, capsys):
    main(["projections", "run", "audit", "--once", "--database", filled])
    database = parse_database_url(filled)  # the audit log is a read model: the views' file
    with sqlite3.connect(database.views_path) as conn:
        (actor,) = conn.execute("SELECT actor FROM audit_log WHERE position = 5").fetchone()
        conn.execute("UPDATE audit_log SET actor = 'nobody' WHERE position = 5")
    capsys.readouterr()
    assert main(["audit", "verify", "--database", filled]) == 1
    assert "position 5: differs in actor" in capsys.readouterr().out
    with sqlite3.connect(database.views_path) as conn:
        conn.execute("UPDATE audit_log SET actor = ? WHERE position = 5", (actor,))
    with sqlite3.connect(database.sqlite_path) as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid = 9")
    assert main(["audit", "verify", "--database", filled]) == 1
    assert "position 9: the audit log has an event the event store no longer has" in \
        capsys.readouterr().out


def test_audit_verify_reports_events_not_audited_yet(filled, capsys):
    main(["projections", "run", "audit", "--once", "--database", filled])
    app = open_trading(filled, clock=SteppingClock(T0 + timedelta(days=1)))
    app.open_account(owner_id="bob", exchange="binance", quote_asset="USDT")
    app.close()
    capsys.readouterr()

    assert main(["audit", "verify", "--database", filled]) == 0
    assert "1 newer events not audited yet" in capsys.readouterr().out


def test_audit_export_gives_every_event_since_a_time_with_its_hash(filled, capsys):
    main(["projections", "run", "audit", "--once", "--database", filled])
    capsys.readouterr()
    since = (T0 + timedelta(seconds=10)).isoformat()

    assert main(["audit", "export", "--since", since, "--format", "jsonl",
                 "--database", filled]) == 0

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    store = view_store(filled)
    try:
        audited = {p: (t, h) for p, t, h in store.query(
            "SELECT position, recorded_at, hash FROM audit_log")}
    finally:
        store.close()
    expected = sorted(p for p, (t, _) in audited.items() if t >= since)
    assert [line["position"] for line in lines] == expected
    assert all(line["hash"] == audited[line["position"]][1] for line in lines)
    sale = next(line for line in lines if line["event_type"] == "Filled"
                and line["data"]["trade_id"] == "t-2")
    assert sale["data"] == {"trade_id": "t-2", "price": "31000", "amount": "0.004",
                            "fee": "0.124", "fee_currency": "USDT"}
    assert sale["summary"] == "filled 0.004 @ 31000, fee 0.124 USDT (trade t-2)"


# --- time travel ----------------------------------------------------------------------------


def test_as_of_a_time_shows_what_the_live_views_showed_then(url, capsys):
    """``--as-of`` is recorded time: a backtest stored later, however early its market
    times, leaves every earlier answer as it was; with or without backtests counted."""
    app = open_trading(url, clock=SteppingClock(T0, timedelta(hours=1)),
                       ids=SequentialIds("asof"))
    seen: list[tuple[str, dict]] = []

    def snapshot() -> None:
        assert main(["projections", "run", "--once", "--database", url]) == 0
        capsys.readouterr()
        reports = {(command, flags): run_json(capsys, command, "--json", *flags,
                                              "--database", url)
                   for command in ("pnl", "balances") for flags in ((), ("--include-backtests",))}
        seen.append((recorded_now(), reports))

    try:
        backtest(app, candle_rows(saw_levels(3)), seed="early")
        snapshot()
        account = app.open_account(owner_id="alice", exchange="binance", quote_asset="USDT")
        app.deposit(account, "USDT", Decimal("250.50"))
        snapshot()
        a_day_of_trading(app)
        snapshot()
        # Stored last, its market times inside the day: earlier answers must not move.
        inside_the_day = int((T0 + timedelta(hours=5)).timestamp() * 1000)
        backtest(app, candle_rows(saw_levels(2), start_ms=inside_the_day), seed="late")
        snapshot()
    finally:
        app.close()

    for moment, reports in seen:
        for (command, flags), now in reports.items():
            past = run_json(capsys, command, "--as-of", moment, "--json", *flags,
                            "--database", url)
            assert _view(past) == _view(now), (command, flags, moment)
            assert past["position"] == now["position"]  # the log as it stood then
    with_backtests = [r[("pnl", ("--include-backtests",))] for _, r in seen]
    users_only = [r[("pnl", ())] for _, r in seen]
    assert with_backtests[2]["deals_closed"] < with_backtests[3]["deals_closed"]
    assert _view(users_only[2]) == _view(users_only[3])  # the backtest is not a user's
    assert "backtest" not in {b["owner_id"] for b in seen[-1][1][("balances", ())]["balances"]}
    assert len(seen[1][1][("balances", ())]["balances"]) == 1


def _view(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("as_of", "position", "lag")}


# --- projections run / status / rebuild -----------------------------------------------------


def test_status_shows_positions_and_lag(filled, capsys):
    status = run_json(capsys, "projections", "status", "--json", "--database", filled)
    assert {p["state"] for p in status["projections"]} == {"not built"}

    main(["projections", "run", "pnl", "--once", "--database", filled])
    capsys.readouterr()
    app = open_trading(filled, clock=SteppingClock(T0 + timedelta(days=1)))
    app.open_account(owner_id="bob", exchange="binance", quote_asset="USDT")
    app.close()

    status = run_json(capsys, "projections", "status", "--json", "--database", filled)
    rows = {p["name"]: p for p in status["projections"]}
    assert rows["pnl"]["state"] == "ok"
    assert rows["pnl"]["position"] == status["head"] - 1
    assert rows["pnl"]["lag"] == 1
    assert rows["pnl"]["running"] is False
    assert rows["audit"]["state"] == "not built"


def test_a_second_runner_of_a_projection_is_turned_away(filled, capsys):
    owner = view_store(filled)
    try:
        assert owner.try_lock("balances")

        code = main(["projections", "run", "balances", "--once", "--database", filled])

        assert code == 1
        assert "PROJECTION_OWNED" in capsys.readouterr().err
        status = run_json(capsys, "projections", "status", "--json", "--database", filled)
        assert status["projections"][1]["name"] == "balances"
    finally:
        owner.close()
    assert main(["projections", "run", "balances", "--once", "--database", filled]) == 0


def test_views_not_built_and_unknown_names_are_usage_errors(filled, capsys):
    assert main(["pnl", "--database", filled]) == 2
    assert "VIEW_NOT_BUILT" in capsys.readouterr().err
    assert main(["projections", "rebuild", "pnll", "--database", filled]) == 2
    assert "UNKNOWN_PROJECTION: no projection pnll" in capsys.readouterr().err
    assert main(["pnl", "--as-of", "yesterday", "--database", filled]) == 2
    assert "INVALID_TIME" in capsys.readouterr().err


def test_an_unknown_sql_rebuild_setting_is_refused_before_anything_is_rebuilt(
        filled, capsys, monkeypatch):
    monkeypatch.setenv("TRADETAPE_SQL_REBUILD", "yes")
    assert main(["projections", "rebuild", "pnl", "--database", filled]) == 1
    err = capsys.readouterr().err
    assert "BAD_SQL_REBUILD: TRADETAPE_SQL_REBUILD='yes' is not one of 0, 1, all" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    monkeypatch.setenv("TRADETAPE_SQL_REBUILD", "0")  # a known value: rebuilt (in Python)
    assert main(["projections", "rebuild", "pnl", "--database", filled]) == 0


def test_rebuild_in_two_processes_equals_one(filled, capsys):
    from application.settings import parse_database_url
    from projections.rebuild import rebuild
    from projections.registry import PROJECTIONS
    from tests.projection_stubs import dump

    assert main(["projections", "rebuild", "--workers", "1", "--database", filled]) == 0
    store = view_store(filled)
    app = open_trading(filled)
    try:
        alone = dump(store)
        head = app.recorder.max_notification_id()
        plans = []
        # Split whatever the measurement says, after a first part run here: the processes
        # carry on from the shadow tables that part left, mid-log.
        rebuild(app, store, list(PROJECTIONS.values()), batch_size=50, workers=2,
                database_url=parse_database_url(filled).url, split=True,
                probe_events=head // 3, on_plan=plans.append)
        assert plans[0].processes == 2 and 0 < plans[0].measured_events < head
        # the ledgers were measured sharing their books, and stay together
        assert "pnl+leaderboard+equity" in plans[0].costs
        assert any("pnl+leaderboard+equity" in "+".join(g) for g in plans[0].groups)
        assert dump(store) == alone
        assert {row.generation for row in store.tracking().values()} == {3}
    finally:
        app.close()
        store.close()


def test_a_rebuild_says_how_many_processes_it_chose(filled, capsys):
    # A log this small is not worth a second process, whatever --workers allows.
    assert main(["projections", "rebuild", "--workers", "2", "--database", filled]) == 0
    assert "events/s, 1 process)" in capsys.readouterr().out


def test_human_output_of_pnl_and_balances(filled, capsys):
    main(["projections", "rebuild", "--database", filled])
    capsys.readouterr()

    assert main(["pnl", "--database", filled, "--include-backtests"]) == 0
    out = capsys.readouterr().out
    assert "P/L of all owners" in out and "backtest one" in out and "total" in out
    assert main(["pnl", "--database", filled]) == 0
    out = capsys.readouterr().out
    assert "backtests left out" in out and "backtest one" not in out
    assert main(["balances", "--owner", "alice", "--database", filled]) == 0
    out = capsys.readouterr().out
    assert "903.866" in out and "EUR" in out


def test_on_postgresql_a_projection_has_one_runner_until_its_process_ends(postgres_url,
                                                                          capsys):
    app = open_trading(postgres_url, clock=SteppingClock(T0), ids=SequentialIds("pg"))
    a_day_of_trading(app)
    app.close()
    owner = view_store(postgres_url)
    assert owner.try_lock("pnl")

    assert main(["projections", "run", "pnl", "--once", "--database", postgres_url]) == 1
    assert "PROJECTION_OWNED: pnl is already run by another process" in \
        capsys.readouterr().err

    owner.close()  # the advisory lock goes with its session
    assert main(["projections", "run", "pnl", "--once", "--database", postgres_url]) == 0
