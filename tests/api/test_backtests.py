"""Backtests from GraphQL, as a dashboard runs them: runBacktest answers at once, progress
arrives on a subscription, then the summary (the keys of ``backtest --json``), deals and
exact equity curve; runs are listed, compared, and private to their owner."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.api.conftest import CONFIG

pytestmark = pytest.mark.timeout(120)
SERIES = "binance_BTC_USDT-1m-2025-11.csv"
RUN = """mutation($input: RunBacktestInput!) { runBacktest(input: $input) { __typename
  ... on BacktestRun { id status candlesFile pair }
  ... on BacktestErrors { code errors { code field message } } } }"""
DETAIL = """query($id: ID!) { backtestRun(id: $id) { id status summary errorCode
  config { takeProfitPct }
  deals { openedAt closedAt closeReason realizedPnl unrealizedPnl }
  equityCurve { time equity } } }"""
DAY = {"file": SERIES, "from": "2025-11-03T00:00:00Z", "to": "2025-11-04T00:00:00Z"}


def finished(server, token: str, run_id: str) -> dict:
    for _ in range(600):
        server.runtime.refresh()
        run = server.gql(DETAIL, {"id": run_id}, token)["backtestRun"]
        if run["status"] != "running":
            return run
        time.sleep(0.05)
    raise AssertionError("the run never ended")


def test_a_backtest_runs_in_the_background_and_answers_what_the_command_line_does(server):
    alice = server.user("alice")
    started = server.gql(RUN, {"input": {"config": CONFIG, "candles": DAY,
                                         "feeRate": "0.001"}}, alice.token)["runBacktest"]
    assert started["__typename"] == "BacktestRun", started
    assert (started["candlesFile"], started["pair"]) == (SERIES, "BTC/USDT")
    run = finished(server, alice.token, started["id"])
    assert run["status"] == "completed" and run["config"]["takeProfitPct"] == "0.15"

    cli = Path(sys.executable).parent / "tradetape"
    config = Path(server.runtime.settings.database_url.removeprefix("sqlite:///")).with_name(
        "bot.json")
    config.write_text(json.dumps({
        "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
        "max_safety_orders": 2, "price_deviation_pct": "0.2", "safety_volume_scale": "1.5",
        "safety_step_scale": "1.2", "take_profit_pct": "0.15"}))
    shipped = Path(__file__).resolve().parents[2] / "adapters/marketdata/data" / SERIES
    done = subprocess.run([str(cli), "backtest", "--candles", str(shipped), "--config",
                           str(config), "--from", DAY["from"], "--to", DAY["to"], "--json"],
                          capture_output=True, text=True, check=True)
    expected = json.loads(done.stdout)
    summary = run["summary"]
    assert set(summary) == set(expected) and summary["run_id"] == run["id"]
    for key in ("deals_closed", "realized_pnl", "max_drawdown", "candles", "win_rate",
                "from_ms", "to_ms", "events"):
        assert summary[key] == expected[key], key
    closed = [d for d in run["deals"] if d["closedAt"]]
    assert len(closed) == expected["deals_closed"] > 0
    assert sum(Decimal(d["realizedPnl"]) for d in closed) == Decimal(expected["realized_pnl"])
    curve = run["equityCurve"]
    assert 400 <= len(curve) <= 502 and curve[0]["time"].startswith("2025-11-03T00:00")
    assert Decimal(curve[-1]["equity"]) == Decimal(expected["total_pnl"])  # exact


def test_progress_arrives_on_a_subscription_until_the_run_completes(server):
    alice = server.user("alice")
    started = server.gql(RUN, {"input": {"config": CONFIG, "candles": {
        "pair": "BTC/USDT"}}}, alice.token)["runBacktest"]
    query = """subscription($id: ID!) { backtestProgress(runId: $id) {
      runId status candlesDone candlesTotal fraction } }"""
    seen = [message["data"]["backtestProgress"] for message in server.subscription(
        query, {"id": started["id"]}, alice.token)]
    assert seen[-1]["status"] == "completed" and seen[-1]["fraction"] == "1"
    assert seen[-1]["candlesDone"] == seen[-1]["candlesTotal"] > 40_000  # the whole month
    fractions = [Decimal(p["fraction"]) for p in seen]
    assert fractions == sorted(fractions)


def test_runs_are_listed_compared_and_private(server):
    alice, bob = server.user("alice"), server.user("bob")
    ids = []
    for tp in ("0.15", "0.5"):
        started = server.gql(RUN, {"input": {"config": {**CONFIG, "takeProfitPct": tp},
                                             "candles": DAY}}, alice.token)["runBacktest"]
        ids.append(started["id"])
        finished(server, alice.token, started["id"])
        server.clock.current += timedelta(seconds=1)
    listed = server.gql("{ backtestRuns(first: 10) { edges { node { id status } } "
                        "pageInfo { hasNextPage } } }", token=alice.token)["backtestRuns"]
    assert [e["node"]["id"] for e in listed["edges"]] == ids[::-1]  # newest first
    compared = server.gql("""query($ids: [ID!]!) { compareBacktests(ids: $ids) {
        id summary } }""", {"ids": ids}, alice.token)["compareBacktests"]
    assert [c["id"] for c in compared] == ids
    assert compared[0]["summary"]["deals_closed"] > compared[1]["summary"]["deals_closed"]
    assert server.gql(DETAIL, {"id": ids[0]}, bob.token)["backtestRun"] is None
    assert server.gql("{ backtestRuns { edges { node { id } } } }",
                      token=bob.token)["backtestRuns"]["edges"] == []
    assert server.gql("query($ids: [ID!]!) { compareBacktests(ids: $ids) { id } }",
                      {"ids": ids}, bob.token)["compareBacktests"] == [None, None]


def test_a_backtest_is_refused_with_every_reason_at_once(server):
    alice = server.user("alice")
    bad = {"config": {**CONFIG, "takeProfitPct": "-1"},
           "candles": {"file": "../../etc/passwd"}, "feeRate": "2", "balance": "-5"}
    refused = server.gql(RUN, {"input": bad}, alice.token)["runBacktest"]
    assert refused["__typename"] == "BacktestErrors"
    codes = {(e["code"], e["field"]) for e in refused["errors"]}
    assert ("CANDLE_FILE_NOT_ALLOWED", "file") in codes
    assert {c for c, _ in codes} >= {"INVALID_CONFIG", "CANDLE_FILE_NOT_ALLOWED"}
    assert {f for _, f in codes} >= {"takeProfitPct", "file", "feeRate", "balance"}
    empty = {"config": CONFIG, "candles": {"file": SERIES, "from": "2030-01-01T00:00:00Z"}}
    started = server.gql(RUN, {"input": empty}, alice.token)["runBacktest"]
    run = finished(server, alice.token, started["id"])
    assert (run["status"], run["errorCode"]) == ("failed", "NO_CANDLES")
