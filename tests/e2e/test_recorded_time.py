"""Acceptance (issue 10): a backtest stored into the database of a running server changes
nothing that `pnl --as-of`, `balances --as-of` and `audit export --since` say about any
earlier moment, on SQLite and on PostgreSQL.

The backtest's events carry their candles' times (November 2025): judged by their own time
they would land in every earlier answer. Recorded time (when the store recorded an event) is
what `--as-of` and `--since` mean, so they land only after the moment the run was stored.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    BOT,
    TRADETAPE,
    create_bot,
    new_user,
    server_env,
    start_bot,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
CANDLES = ROOT / "adapters" / "marketdata" / "data" / "binance_BTC_USDT-1m-2025-11.csv"
CONFIG = ROOT / "api" / "examples" / "dca_bot.json"
REPORTS = (("pnl",), ("pnl", "--include-backtests"), ("balances",),
           ("balances", "--include-backtests"))


def tradetape(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TRADETAPE), *argv], capture_output=True, text=True,
                          env=server_env(), timeout=120, check=False)


def answer(*argv: str) -> dict:
    done = tradetape(*argv, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    report.pop("lag")  # how far the log has moved on since: grows, by design
    return report


def export(database: str, since: str) -> list[dict]:
    done = tradetape("audit", "export", "--since", since, "--database", database)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def moment() -> str:
    time.sleep(0.01)  # clear of the events recorded just before (ms on SQLite)
    now = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    return now


def test_a_backtest_stored_while_the_server_trades_changes_no_earlier_answer(
        persistent_store_url, launch):  # the database outlives the server
    database = persistent_store_url
    server = launch(database)
    moments = [moment()]  # the server up, no user yet
    token = new_user(server, "timekeeper@example.com")
    moments.append(moment())  # a user with her paper money
    bot_id = create_bot(server, token, "live bot")
    start_bot(server, token, bot_id)
    wait_for("a live deal opens", lambda: server.gql(BOT, {"id": bot_id}, token)["bot"][
        "dealsOpened"] >= 1, every=0.1)
    moments.append(moment())
    wait_for("a live deal closes", lambda: server.gql(BOT, {"id": bot_id}, token)["bot"][
        "dealsClosed"] >= 1, every=0.1)
    moments.append(moment())

    before = {(m, r): answer(*r, "--as-of", m, "--database", database)
              for m in moments for r in REPORTS}
    exports = {m: export(database, m) for m in moments}
    stored_from = moment()
    run = tradetape("backtest", "--candles", str(CANDLES), "--config", str(CONFIG),
                    "--store", database, "--json")
    assert run.returncode == 0, run.stderr
    run_events = json.loads(run.stdout)["events"]
    after_run = moment()

    for (m, report), seen in before.items():
        assert answer(*report, "--as-of", m, "--database", database) == seen, (m, report)
    for m, lines in exports.items():
        now = export(database, m)
        assert now[:len(lines)] == lines, m  # nothing appeared before what was exported
    # The live server kept trading; the run's events (their own times in November 2025)
    # are all exported as recorded after the run started: none missed.
    assert before[(moments[-1], ("pnl",))]["deals_closed"] >= 1
    since_run = export(database, stored_from)
    runs = [e for e in since_run if e["at"] < "2026"]  # live events are stamped now
    assert len(runs) == run_events
    assert {e["aggregate_type"] for e in runs} >= {"BacktestRun", "Bot", "Deal", "Order"}
    assert all(datetime.fromisoformat(e["recorded_at"]) >= datetime.fromisoformat(
        stored_from) for e in since_run)

    # Now: a user's view leaves the run out unless asked; as of before it, it is nowhere.
    users = answer("pnl", "--as-of", after_run, "--database", database)
    everything = answer("pnl", "--include-backtests", "--as-of", after_run,
                        "--database", database)
    assert "backtest" not in {b["owner_id"] for b in users["bots"]}
    assert "backtest" in {b["owner_id"] for b in everything["bots"]}
    assert not any("backtest" in {b["owner_id"] for b in seen.get("bots", [])}
                   for seen in before.values())

    # JSON answers say the log position they reflect; a time to come is refused.
    positions = [before[(m, ("pnl",))]["position"] for m in moments]
    assert positions == sorted(positions) and positions[-1] > positions[0]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    refused = tradetape("pnl", "--as-of", future, "--database", database)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: AS_OF_IN_FUTURE:")
    assert len(refused.stderr.strip().splitlines()) == 1
