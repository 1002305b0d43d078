"""``tradetape backtest`` as a user drives it: the JSON and human summaries, refusals of bad
candles and unsupported configurations (with nothing stored), a real balance, cooldowns,
the plot, gaps, and the events kept with ``--store``. The figures themselves are checked
against the reference implementation in test_engine_vs_reference.py."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.marketdata.shipped import shipped_series
from api.cli import main
from application.bootstrap import open_trading
from application.replay import read_log

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000  # a whole minute, UTC ms
MINUTE = 60_000
HEADER = "timestamp_ms,open,high,low,close,volume\n"

BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 3, "price_deviation_pct": "1", "safety_volume_scale": "1.5",
    "safety_step_scale": "1", "take_profit_pct": "1",
}
SUMMARY_KEYS = {
    "candles", "deals_closed", "deals_open", "take_profits", "stop_losses", "realized_pnl",
    "unrealized_pnl", "fees_closed_deals", "win_rate", "max_safety_orders_used",
    "max_drawdown", "events", "max_capital_committed", "orders_rejected",
}
DECIMAL_KEYS = ("realized_pnl", "unrealized_pnl", "fees_closed_deals", "max_drawdown",
                "max_capital_committed")
COUNT_KEYS = ("candles", "deals_closed", "deals_open", "take_profits", "stop_losses",
              "max_safety_orders_used", "events", "orders_rejected")
BTC = shipped_series("binance_BTC_USDT-1m-2025-11.csv")
UNITTEST = shipped_series("freqtrade_UNITTEST_BTC-1m.csv")


def write_candles(path: Path, rows) -> Path:
    """Rows of (timestamp_ms, open, high, low, close), written exactly as given."""
    path.write_text(HEADER + "".join(f"{t},{o},{h},{lo},{c},1\n" for t, o, h, lo, c in rows))
    return path


def write_config(tmp_path: Path, config: dict, name: str = "bot.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def backtest(capsys, candles: Path, config: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["backtest", "--candles", str(candles), "--config", str(config),
                 "--no-progress", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def backtest_json(capsys, candles: Path, config: Path, *extra: str) -> dict:
    code, out, err = backtest(capsys, candles, config, "--json", *extra)
    assert code == 0, err
    result = json.loads(out)  # fails on anything after the one object
    assert isinstance(result, dict)
    return result


def stored_event_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM stored_events").fetchone()[0]


def assert_nothing_stored(db: Path) -> None:
    """No partial run: the database was never created, or holds no events."""
    if db.exists():
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "stored_events" in tables:
                assert conn.execute("SELECT count(*) FROM stored_events").fetchone()[0] == 0


def assert_one_error_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def flat(i: int, price: str = "100") -> tuple:
    return (T0 + i * MINUTE, price, price, price, price)


# --- the JSON summary -----------------------------------------------------------------------


def test_json_is_one_object_with_every_figure_and_decimals_as_strings(tmp_path, capsys):
    result = backtest_json(capsys, BTC, write_config(tmp_path, BOT))
    assert result.keys() >= SUMMARY_KEYS
    assert "deals" not in result
    for key in DECIMAL_KEYS:
        assert isinstance(result[key], str), key
        Decimal(result[key])
    for key in COUNT_KEYS:
        assert isinstance(result[key], int), key
    assert result["candles"] == 43200
    assert result["deals_closed"] > 0
    assert result["deals_closed"] == result["take_profits"] + result["stop_losses"]
    assert isinstance(result["win_rate"], str)
    assert Decimal("0") <= Decimal(result["win_rate"]) <= Decimal("1")
    # nothing refused for funds without --balance; the capital it took is measured instead
    assert result["orders_rejected"] == 0
    assert Decimal(result["max_capital_committed"]) >= Decimal("100")
    assert result["events"] > 0


def test_deals_adds_every_closed_deal_with_decimal_strings(tmp_path, capsys):
    config = write_config(tmp_path, {**BOT, "stop_loss_pct": "3"})
    result = backtest_json(capsys, BTC, config, "--deals")
    deals = result["deals"]
    assert len(deals) == result["deals_closed"] > 0
    reasons = [d["reason"] for d in deals]
    assert reasons.count("take_profit") == result["take_profits"]
    assert reasons.count("stop_loss") == result["stop_losses"]
    total = Decimal(0)
    for deal in deals:
        for key in ("avg_entry", "exit", "pnl", "fees"):
            assert isinstance(deal[key], str), key
        assert deal["opened"] <= deal["closed"]
        total += Decimal(deal["pnl"])
    assert total == Decimal(result["realized_pnl"])
    assert sum(Decimal(d["fees"]) for d in deals) == Decimal(result["fees_closed_deals"])
    # one deal at a time: each opens no earlier than the previous one closed
    for before, after in itertools.pairwise(deals):
        assert after["opened"] >= before["closed"]


def test_deals_adds_the_deal_still_open_marked_at_the_last_close(tmp_path, capsys):
    result = backtest_json(capsys, BTC, write_config(tmp_path, BOT), "--deals")
    assert result["deals_open"] == 1
    still_open = result["open_deal"]
    assert still_open["closed"] is None and still_open["reason"] is None
    assert still_open["exit"] is None and still_open["pnl"] is None
    assert still_open["opened"] >= result["deals"][-1]["closed"]
    assert still_open["unrealized_pnl"] == result["unrealized_pnl"]
    # entry: the base order's price; the average moves only when a safety order fills
    units, cost = Decimal(still_open["units"]), Decimal(still_open["cost"])
    assert Decimal(still_open["avg_entry"]) == cost / units
    if still_open["safety_orders"] == 0:
        assert Decimal(still_open["entry"]) == Decimal(still_open["avg_entry"])
    else:
        assert Decimal(still_open["entry"]) > Decimal(still_open["avg_entry"])
    # a balance that cannot pay for the base order: the bot stops, no deal is open
    stopped = backtest_json(capsys, BTC, write_config(tmp_path, BOT), "--deals",
                            "--balance", "50")
    assert stopped["deals_open"] == 0 and stopped["open_deal"] is None


def test_win_rate_is_null_without_closed_deals(tmp_path, capsys):
    candles = write_candles(tmp_path / "c.csv", [flat(i) for i in range(5)])
    result = backtest_json(capsys, candles, write_config(tmp_path, BOT))
    assert result["deals_closed"] == 0
    assert result["deals_open"] == 1
    assert result["win_rate"] is None


def test_the_human_summary_shows_the_same_figures(tmp_path, capsys):
    config = write_config(tmp_path, BOT)
    figures = backtest_json(capsys, UNITTEST, config)
    code, out, err = backtest(capsys, UNITTEST, config)
    assert code == 0, err
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)

    def shown(label: str) -> str:
        lines = [line for line in out.splitlines() if re.match(rf"\W*{label}\s", line)]
        assert lines, (label, out)
        return re.findall(r"-?\d[\d.]*", lines[0])[-1]

    for key in ("candles", "gaps", "deals_closed", "take_profits", "orders_rejected", "events"):
        assert int(shown(key.replace("_", " "))) == figures[key], key
    for key in ("realized_pnl", "max_drawdown", "fees_closed_deals"):
        exact = Decimal(figures[key]).quantize(Decimal("1e-8"))
        assert Decimal(shown(key.replace("_", " "))) == exact, key
    for key in ("win_rate", "roi", "market_change"):  # as percentages
        percent = (Decimal(figures[key]) * 100).quantize(Decimal("0.01"))
        assert Decimal(shown(key.replace("_", " "))) == percent, key
    assert "memory only" in out  # tells the user nothing was kept


def test_the_human_deals_table_shows_utc_times_and_the_open_deal(tmp_path, capsys):
    config = write_config(tmp_path, BOT)
    figures = backtest_json(capsys, BTC, config, "--deals")
    code, out, err = backtest(capsys, BTC, config, "--deals")
    assert code == 0, err
    first = figures["deals"][0]
    opened = datetime.fromtimestamp(first["opened"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    assert opened in out
    assert "still open" in out and "unrealized" in out


# --- bad candle data: refused, named, nothing stored ----------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "rule"),
    [
        ((T0 + 2 * MINUTE, "100", "101", "99", "100"), "non_increasing_timestamp"),
        ((T0 + 4 * MINUTE, "100", "99.5", "99", "99.2"), "high_below_open_close"),
        ((T0 + 4 * MINUTE, "100", "101", "99", "1e2"), "unparsable_number"),
        ((T0 + 4 * MINUTE, "100", "101", "100.5", "100.7"), "low_above_open_close"),
        ((T0 + 4 * MINUTE, "0", "101", "0", "100"), "non_positive_price"),
    ],
    ids=["timestamp", "high", "number", "low", "price"],
)
def test_bad_candle_data_is_refused_naming_line_and_rule_and_nothing_is_stored(
    tmp_path, capsys, bad_row, rule
):
    rows = [(T0 + i * MINUTE, "100", "101", "99", "100.5") for i in range(4)]
    rows += [bad_row, *[(T0 + i * MINUTE, "100", "101", "99", "100.5") for i in range(5, 9)]]
    candles = write_candles(tmp_path / "bad.csv", rows)
    db = tmp_path / "run.db"
    code, out, err = backtest(capsys, candles, write_config(tmp_path, BOT), "--json",
                              "--store", f"sqlite:///{db}")
    assert code == 2
    assert out == ""
    # the header is line 1, so the fifth candle is line 6
    line = assert_one_error_line(err, "error: BAD_CANDLE_DATA", "line 6", rule, "bad.csv")
    assert "Traceback" not in line
    assert_nothing_stored(db)


@pytest.mark.parametrize("name", ["missing.csv", ""])
def test_a_candles_file_that_cannot_be_read_is_a_named_error_not_a_traceback(
        tmp_path, capsys, name):
    code, out, err = backtest(capsys, tmp_path / name, write_config(tmp_path, BOT), "--json")
    assert (code, out) == (2, "")
    assert_one_error_line(err, "error: CANDLES_UNREADABLE", "cannot read")


def test_a_bad_line_deep_in_a_real_file_is_found(tmp_path, capsys):
    lines = BTC.read_text().splitlines(keepends=True)
    row = lines[30_000].split(",")
    row[2] = str(Decimal(row[1]) - 1)  # high below open
    lines[30_000] = ",".join(row)
    candles = tmp_path / "btc.csv"
    candles.write_text("".join(lines))
    code, out, err = backtest(capsys, candles, write_config(tmp_path, BOT))
    assert code == 2
    assert out == ""
    assert_one_error_line(err, "BAD_CANDLE_DATA", "line 30001", "high_below_open_close")


# --- configurations refused -----------------------------------------------------------------


def test_a_trailing_bot_is_backtested_stored_and_replays(tmp_path, capsys):
    config = write_config(tmp_path, {**BOT, "trailing_take_profit_pct": "0.5"})
    url = f"sqlite:///{tmp_path / 'run.db'}"
    result = backtest_json(capsys, BTC, config, "--deals", "--store", url)
    assert result["trailing_take_profits"] > 0
    trailing = [d for d in result["deals"] if d["reason"] == "trailing_take_profit"]
    assert len(trailing) == result["trailing_take_profits"]
    assert result["take_profits"] >= result["trailing_take_profits"]
    topics = [row[0] for row in stored_rows(url)]
    assert sum(t.endswith("Deal.TrailingTriggered") for t in topics) == len(trailing)
    assert main(["replay", "--database", url, "--check", "--no-progress"]) == 0


def test_a_bot_without_trailing_reports_no_trailing_figure(tmp_path, capsys):
    result = backtest_json(capsys, BTC, write_config(tmp_path, BOT))
    assert "trailing_take_profits" not in result


def test_a_float_in_the_configuration_is_refused_naming_the_field(tmp_path, capsys):
    config = tmp_path / "bot.json"
    config.write_text(json.dumps(BOT).replace('"take_profit_pct": "1"',
                                              '"take_profit_pct": 1.5'))
    code, out, err = backtest(capsys, BTC, config, "--json")
    assert code == 2
    assert out == ""
    assert_one_error_line(err, "FLOAT_NOT_ALLOWED", "take_profit_pct")


def test_an_unknown_configuration_field_is_refused(tmp_path, capsys):
    config = write_config(tmp_path, {**BOT, "take_profit": "2"})
    code, out, err = backtest(capsys, BTC, config, "--json")
    assert code == 2
    assert out == ""
    assert_one_error_line(err, "UNKNOWN_FIELD", "take_profit")


# --- a real balance -------------------------------------------------------------------------

# Deal opens at 100 (base 100); safety orders 50 at 99, 75 at 98, 112.5 at 97; TP 1%.
BALANCE_ROWS = [
    flat(0),
    (T0 + 1 * MINUTE, "100", "100", "98.5", "98.5"),  # fills SO1 at 99 only
    (T0 + 2 * MINUTE, "98.5", "101", "98.5", "101"),  # take profit at avg × 1.01 < 101
    (T0 + 3 * MINUTE, "101", "101", "101", "101"),
]


def test_a_balance_rejects_the_orders_it_cannot_cover_and_the_deal_goes_on(tmp_path, capsys):
    candles = write_candles(tmp_path / "c.csv", BALANCE_ROWS)
    config = write_config(tmp_path, BOT)
    unlimited = backtest_json(capsys, candles, config, "--deals")
    limited = backtest_json(capsys, candles, config, "--deals", "--balance", "160")
    assert unlimited["orders_rejected"] == 0
    assert Decimal(unlimited["max_capital_committed"]) > Decimal("160")
    # 100.1 for the base order leaves 59.9: SO1 (50.05 with fee) rests, SO2 and SO3 do not.
    # The second deal (opened at 101 with ~160.1 free again) is refused the same two.
    assert limited["orders_rejected"] == 4
    assert limited["balance"] == "160"
    assert Decimal(limited["max_capital_committed"]) <= Decimal("160")
    # the first deal still used its safety order and took profit like the unlimited one
    assert limited["deals_closed"] == unlimited["deals_closed"] == 1
    assert limited["deals"][0]["safety_orders"] == 1
    assert limited["deals"][0]["pnl"] == unlimited["deals"][0]["pnl"]
    assert limited["deals_open"] == 1


def test_a_negative_balance_is_refused_and_nothing_is_stored(tmp_path, capsys):
    db = tmp_path / "run.db"
    code, out, err = backtest(capsys, UNITTEST, write_config(tmp_path, BOT), "--balance", "-5",
                              "--store", f"sqlite:///{db}")
    assert code == 2
    assert err.strip() == "error: OUT_OF_RANGE (balance): must be from 0 to 1000000000000000"
    assert out == ""
    assert_nothing_stored(db)


def test_a_balance_too_small_for_the_base_order_opens_no_deal(tmp_path, capsys):
    candles = write_candles(tmp_path / "c.csv", BALANCE_ROWS)
    result = backtest_json(capsys, candles, write_config(tmp_path, BOT), "--balance", "100")
    # 100 quote does not cover 100 plus its 0.1% fee
    assert result["deals_closed"] == 0
    assert result["deals_open"] == 0
    assert result["orders_rejected"] > 0
    assert Decimal(result["realized_pnl"]) == 0
    assert Decimal(result["unrealized_pnl"]) == 0
    assert Decimal(result["max_capital_committed"]) == 0
    assert result["win_rate"] is None


# --- cooldown -------------------------------------------------------------------------------

SPIKE = ("100", "102", "100", "100")  # takes profit at 101 on a deal opened at 100


def cooldown_rows(timestamps_in_minutes: list[int], spikes: set[int]) -> list[tuple]:
    return [(T0 + m * MINUTE, *SPIKE) if m in spikes else flat(m)
            for m in timestamps_in_minutes]


@pytest.mark.parametrize(
    ("cooldown", "second_opens_at"),
    [(0, 1), (60, 2), (90, 3), (120, 3), (121, 4)],
)
def test_cooldown_opens_the_next_deal_at_the_first_close_that_long_after(
    tmp_path, capsys, cooldown, second_opens_at
):
    # Deal 1 opens at minute 0's close and takes profit in minute 1 (closing at minute 2);
    # the next deal opens at the first candle close at least `cooldown` s later (with
    # cooldown 0: at minute 1's own close) and takes profit in minute 6.
    candles = write_candles(tmp_path / "c.csv", cooldown_rows(list(range(9)), {1, 6}))
    config = write_config(tmp_path, {**BOT, "max_safety_orders": 0,
                                     "cooldown_seconds": cooldown})
    result = backtest_json(capsys, candles, config, "--deals")
    first, second = result["deals"]
    assert (first["opened"], first["closed"]) == (T0, T0 + MINUTE)
    assert second["opened"] == T0 + second_opens_at * MINUTE
    assert second["closed"] == T0 + 6 * MINUTE
    assert result["take_profits"] == 2


def test_cooldown_across_a_gap_opens_at_the_first_candle_after_it(tmp_path, capsys):
    # Minutes 3..7 are missing. Deal 1 closes in the candle of minute 1 (its close is at
    # minute 2), so a 300 s cooldown ends at minute 7, where the missing candle of minute 6
    # would have closed; the first close after it is that of the candle of minute 8.
    candles = write_candles(tmp_path / "c.csv",
                            cooldown_rows([0, 1, 2, 8, 9, 10, 11], {1, 10}))
    config = write_config(tmp_path, {**BOT, "max_safety_orders": 0, "cooldown_seconds": 300})
    result = backtest_json(capsys, candles, config, "--deals")
    first, second = result["deals"]
    assert first["closed"] == T0 + MINUTE
    assert second["opened"] == T0 + 8 * MINUTE
    assert second["closed"] == T0 + 10 * MINUTE
    assert result["gaps"] == 1


# --- plot, gaps, store ----------------------------------------------------------------------


def test_plot_writes_a_png(tmp_path, capsys):
    png = tmp_path / "out.png"
    code, out, err = backtest(capsys, UNITTEST, write_config(tmp_path, BOT), "--json",
                              "--plot", str(png))
    assert code == 0, err
    json.loads(out)  # the plot does not spoil the JSON
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # two panels with a price series, not an empty canvas


def test_the_plot_makes_its_folder_and_a_path_it_cannot_write_is_refused_first(tmp_path,
                                                                              capsys):
    config = write_config(tmp_path, BOT)
    png = tmp_path / "new" / "folder" / "run.png"
    code, _, err = backtest(capsys, UNITTEST, config, "--json", "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"
    db = tmp_path / "run.db"
    code, out, err = backtest(capsys, UNITTEST, config, "--plot", str(tmp_path),
                              "--store", f"sqlite:///{db}")
    assert (code, out) == (2, "")
    assert err.strip() == f"error: PLOT_UNWRITABLE: cannot write the picture to {tmp_path}"
    assert_nothing_stored(db)  # refused before the run, not after it


def test_gaps_in_time_are_allowed_and_reported(tmp_path, capsys):
    config = write_config(tmp_path, BOT)
    real = backtest_json(capsys, UNITTEST, config)
    assert real["gaps"] > 0
    assert real["candles"] == 13681
    no_gaps = backtest_json(capsys, BTC, config)
    assert no_gaps["gaps"] == 0
    minutes = [0, 1, 2, 5, 6, 7, 20, 21]  # two holes
    made = write_candles(tmp_path / "holes.csv", cooldown_rows(minutes, set()))
    assert backtest_json(capsys, made, config)["gaps"] == 2


def test_ctrl_c_keeps_the_stored_steps_and_says_so(tmp_path, capsys, monkeypatch):
    from application import backtest as loop

    walk = loop._walk

    def walk_then_ctrl_c(*args, **kwargs):
        walk(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop._Steps, "BATCH_EVENTS", 1)  # every step stored as it is taken
    monkeypatch.setattr(loop, "_walk", walk_then_ctrl_c)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    code, out, err = backtest(capsys, UNITTEST, write_config(tmp_path, BOT), "--store", url)
    assert code == 130
    assert "marked interrupted" in err and err.rstrip().endswith("interrupted")
    assert out == ""
    monkeypatch.undo()
    assert main(["replay", "--database", url, "--check", "--no-progress"]) == 0
    assert "interrupted (stopped by its user)" in capsys.readouterr().out


def stored_rows(url: str) -> list[tuple[str, object, int, bytes]]:
    app = open_trading(url)
    try:
        return [(n.topic, n.originator_id, n.originator_version, bytes(n.state))
                for n in read_log(app)]
    finally:
        app.close()


def test_store_keeps_every_event_of_the_run(tmp_path, capsys):
    db = tmp_path / "run.db"
    result = backtest_json(capsys, UNITTEST, write_config(tmp_path, BOT),
                           "--store", f"sqlite:///{db}")
    assert result["events"] > 100
    assert stored_event_count(db) == result["events"]
    topics = [row[0] for row in stored_rows(f"sqlite:///{db}")]
    assert topics[0].endswith("BacktestRun.Started")
    assert topics[-1].endswith("BacktestRun.Completed")
    assert sum(t.endswith("Deal.Closed") for t in topics) == result["deals_closed"]


def test_memory_store_keeps_nothing_on_disk(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = backtest_json(capsys, BTC, write_config(tmp_path, BOT))
    assert result["events"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.json"]


def test_the_same_seed_stores_byte_identical_events(tmp_path, capsys):
    config = write_config(tmp_path, {**BOT, "stop_loss_pct": "2"})
    urls = [f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db", "c.db")]
    for url, seed in zip(urls, ("S", "S", "T"), strict=True):
        backtest_json(capsys, UNITTEST, config, "--seed", seed, "--store", url)
    first, second, other = (stored_rows(url) for url in urls)
    assert len(first) > 100
    assert first == second
    assert first != other  # the seed does name the run's ids
    assert [r[0] for r in first] == [r[0] for r in other]


# --- a period of the file -------------------------------------------------------------------


def test_a_period_runs_exactly_as_a_file_of_those_candles_would(tmp_path, capsys):
    """--from/--to: the candles opening from FROM until TO (exclusive), nothing else."""
    lines = BTC.read_text().splitlines()
    start, end = 1762300800000, 1763596800000  # 2025-11-05 and 2025-11-20, 00:00 UTC
    kept = [line for line in lines[1:] if start <= int(line.split(",")[0]) < end]
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join([lines[0], *kept]) + "\n")
    config = write_config(tmp_path, {**BOT, "stop_loss_pct": "3"})
    whole_file = backtest_json(capsys, cut, config, "--deals", "--seed", "p")
    period = backtest_json(capsys, BTC, config, "--deals", "--seed", "p",
                           "--from", "2025-11-05", "--to", "2025-11-20T00:00:00Z")
    assert period["candles"] == len(kept) == 15 * 1440
    for figures in (whole_file, period):
        del figures["run_id"], figures["events"]  # a period run records one event more
    assert (period.pop("from_ms"), period.pop("to_ms")) == (start, end)
    assert period == whole_file
    in_ms = backtest_json(capsys, BTC, config, "--deals", "--seed", "p",
                          "--from", str(start), "--to", str(end))
    del in_ms["run_id"], in_ms["events"], in_ms["from_ms"], in_ms["to_ms"]
    assert in_ms == period


def test_a_stored_period_run_records_its_period_and_checks(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    result = backtest_json(capsys, BTC, write_config(tmp_path, BOT), "--store", url,
                           "--from", "2025-11-10T12:00")
    app = open_trading(url)
    try:
        log = list(read_log(app))
    finally:
        app.close()
    assert [n.topic.rsplit(":", 1)[1] for n in log[:2]] == [
        "BacktestRun.Started", "BacktestRun.PeriodChosen"]
    assert json.loads(log[1].state)["from_ms"] == 1762776000000
    assert json.loads(log[1].state)["to_ms"] is None
    assert main(["replay", "--database", url, "--check", "--no-progress"]) == 0
    assert f"backtest {result['run_id']}: identical" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "code", "says"),
    [
        (["--from", "2025-11-20", "--to", "2025-11-05"], "INVALID_PERIOD", "start before"),
        (["--from", "2025-11-05", "--to", "2025-11-05"], "INVALID_PERIOD", "start before"),
        (["--from", "2026-01-01"], "NO_CANDLES", "no candle opening from 2026-01-01"),
        (["--to", "2025-11-01T00:00"], "NO_CANDLES", "until 2025-11-01T00:00:00+00:00"),
        (["--from", "next tuesday"], "INVALID_TIME", "--from 'next tuesday'"),
    ],
)
def test_a_period_with_no_candles_is_refused_and_nothing_is_stored(tmp_path, capsys, options,
                                                                     code, says):
    db = tmp_path / "run.db"
    exit_code, out, err = backtest(capsys, BTC, write_config(tmp_path, BOT), *options,
                                   "--store", f"sqlite:///{db}")
    assert (exit_code, out) == (2, "")
    assert_one_error_line(err, f"error: {code}", says)
    assert_nothing_stored(db)
