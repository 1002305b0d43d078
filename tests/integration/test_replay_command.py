"""``tradetape replay``: rebuilding every stored aggregate, and ``--check`` re-running each
stored backtest from its recorded inputs and comparing the two event streams, on SQLite and
PostgreSQL; tampered events and changed or missing candle files are caught."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from api.cli import main
from application.bootstrap import open_trading, rerun_backtest, run_backtest_on
from application.replay import (
    check_stored_run,
    compare_streams,
    read_log,
    rebuild_all,
    stored_run_events,
)
from domain.dca import DcaConfig
from tests.strategies import dca_configs

UNITTEST = shipped_series("freqtrade_UNITTEST_BTC-1m.csv")
BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 3, "price_deviation_pct": "1", "safety_volume_scale": "1.5",
    "safety_step_scale": "1", "take_profit_pct": "1", "stop_loss_pct": "4",
}


def stored_backtest(tmp_path: Path, capsys, url: str, candles: Path = UNITTEST,
                    config: dict | None = None, *extra: str) -> dict:
    config_file = tmp_path / "bot.json"
    config_file.write_text(json.dumps(config or BOT))
    code = main(["backtest", "--candles", str(candles), "--config", str(config_file),
                 "--store", url, "--json", "--no-progress", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def replay(capsys, url: str, *extra: str) -> tuple[int, str]:
    code = main(["replay", "--database", url, "--no-progress", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def copy_of_candles(tmp_path: Path) -> Path:
    path = tmp_path / "candles.csv"
    shutil.copyfile(UNITTEST, path)
    return path


# --- --check passes -------------------------------------------------------------------------


def test_check_passes_for_a_run_stored_in_sqlite(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    run = stored_backtest(tmp_path, capsys, url)
    assert run["deals_closed"] > 0
    code, out = replay(capsys, url, "--check")
    assert code == 0, out
    assert f"backtest {run['run_id']}: identical ({run['events']} events)" in out
    assert "DIFFERS" not in out


@pytest.mark.postgres
def test_check_passes_for_runs_stored_in_postgresql(tmp_path, capsys, postgres_url):
    first = stored_backtest(tmp_path, capsys, postgres_url)
    second = stored_backtest(tmp_path, capsys, postgres_url,
                             shipped_series("freqtrade_ETH_BTC-5m.csv"),
                             {**BOT, "pair": "ETH/BTC", "base_order_quote": "1",
                              "safety_order_quote": "0.5"}, "--balance", "2")
    assert second["orders_rejected"] > 0
    code, out = replay(capsys, postgres_url, "--check")
    assert code == 0, out
    for run in (first, second):
        assert f"backtest {run['run_id']}: identical ({run['events']} events)" in out
    assert "BacktestRun: 2" in out


def test_check_passes_for_several_runs_in_one_database(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    runs = [stored_backtest(tmp_path, capsys, url, UNITTEST, {**BOT, "take_profit_pct": tp},
                            "--seed", f"run-{tp}")
            for tp in ("1", "2.5")]
    code, out = replay(capsys, url, "--check")
    assert code == 0, out
    assert out.count(": identical (") == 2
    for run in runs:
        assert f"backtest {run['run_id']}: identical ({run['events']} events)" in out


def test_check_passes_from_another_directory_for_a_run_given_a_relative_path(
    tmp_path, capsys, monkeypatch
):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    shutil.copyfile(UNITTEST, project / "candles.csv")
    url = f"sqlite:///{tmp_path / 'run.db'}"
    monkeypatch.chdir(project)
    run = stored_backtest(tmp_path, capsys, url, Path("candles.csv"))
    monkeypatch.chdir(elsewhere)  # the recorded file must not depend on where one stands
    code, out = replay(capsys, url, "--check")
    assert code == 0, out
    assert f"backtest {run['run_id']}: identical ({run['events']} events)" in out


STORED_BY_0A75F7D = Path(__file__).parent.parent / "data" / "stored_runs" / (
    "run_stored_by_0a75f7d.json")


def store_recorded_run(url: str, fixture: Path = STORED_BY_0A75F7D, edit=None) -> int:
    """Write a run recorded by an earlier version into a fresh store at ``url``, its candles
    being the shipped copy; ``edit(topic, state)`` may alter an event's data first."""
    from eventsourcing.persistence import StoredEvent

    recorded = json.loads(fixture.read_text())
    candles = json.dumps(str(shipped_series(recorded["candles"])))[1:-1]
    app = open_trading(url)
    try:
        events = []
        for originator_id, version, topic, written in recorded["events"]:
            state = written.replace(recorded["placeholder"], candles)
            if edit:
                state = edit(topic, state)
            events.append(StoredEvent(UUID(originator_id), version, topic, state.encode()))
        app.recorder.insert_events(events)
    finally:
        app.close()
    return len(events)


def test_check_passes_for_a_run_stored_by_an_earlier_version(tmp_path, capsys):
    """A run stored by commit 0a75f7d, which recorded fewer figures at the end of a run
    (no ``bot_error``): the re-run records the figures it recorded and matches it."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    count = store_recorded_run(url)
    completed = json.loads(json.loads(STORED_BY_0A75F7D.read_text())["events"][-1][3])
    assert "bot_error" not in completed["summary"]
    code, out = replay(capsys, url, "--check")
    assert code == 0, out
    assert f": identical ({count} events)" in out


def test_a_figure_removed_from_a_stored_summary_fails_the_check(tmp_path, capsys):
    def without_realized_pnl(topic: str, state: str) -> str:
        if not topic.endswith("BacktestRun.Completed"):
            return state
        data = json.loads(state)
        del data["summary"]["realized_pnl"]
        return json.dumps(data, separators=(",", ":"))

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store_recorded_run(url, edit=without_realized_pnl)
    code, out = replay(capsys, url, "--check")
    assert code == 1
    assert "DIFFERS" in out and "BacktestRun.Completed" in out


def test_figures_added_to_the_summary_are_recorded_with_new_runs(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    shown = stored_backtest(tmp_path, capsys, url)
    app = open_trading(url)
    try:
        run = next(a for a in rebuild_all(app).backtests)
    finally:
        app.close()
    recorded = {key: str(value) if isinstance(value, Decimal) else value
                for key, value in run.summary.items()}
    assert recorded == {key: value for key, value in shown.items()
                        if key not in ("events", "run_id")}
    assert {"profit_factor", "roi", "bot_error"} <= recorded.keys()


# --- --check catches differences ------------------------------------------------------------


def test_a_tampered_event_fails_the_check_naming_the_first_difference(tmp_path, capsys):
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    run = stored_backtest(tmp_path, capsys, url)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY rowid").fetchall()
        # the second deal's base buy: tamper with its fill price
        fills = [r for r in rows if r[3].endswith("Deal.BuyFilled")
                 and json.loads(r[4])["safety_order"] == 0]
        rowid, originator, version, _, state = fills[1]
        price = json.loads(state)["price"]["_data_"]
        tampered = state.replace(f'"_data_":"{price}"'.encode(),
                                 f'"_data_":"{Decimal(price) + 1}"'.encode(), 1)
        assert tampered != state
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (tampered, rowid))
    position = [r[0] for r in rows].index(rowid) + 1
    code, out = replay(capsys, url, "--check")
    assert code == 1
    line = next(line for line in out.splitlines() if "DIFFERS" in line)
    assert line.startswith(f"backtest {run['run_id']}: DIFFERS at event #{position} ")
    assert f"Deal.BuyFilled of {originator} v{version} " in line.replace("-", "")


def test_an_event_added_to_a_run_after_later_runs_fails_the_check(tmp_path, capsys):
    """The check reads the stretch of the log a run's aggregates span: an event slipped in
    after other runs, on one of this run's deals, is still found."""
    from eventsourcing.persistence import StoredEvent

    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    first = stored_backtest(tmp_path, capsys, url)
    stored_backtest(tmp_path, capsys, url, UNITTEST, {**BOT, "take_profit_pct": "2"})
    with sqlite3.connect(db) as conn:
        originator, state = conn.execute(
            "SELECT originator_id, state FROM stored_events "
            "WHERE topic LIKE '%Deal.TargetsMoved' ORDER BY rowid LIMIT 1").fetchone()
        last = conn.execute("SELECT max(originator_version) FROM stored_events WHERE "
                            "originator_id = ?", (originator,)).fetchone()[0]
    app = open_trading(url)
    try:
        app.recorder.insert_events([StoredEvent(UUID(originator), last + 1,
                                                "domain.deals:Deal.TargetsMoved", state)])
    finally:
        app.close()
    code, out = replay(capsys, url, "--check")
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith(f"backtest {first['run_id']}"))
    assert "DIFFERS" in line and "only stored has Deal.TargetsMoved" in line


def test_a_run_whose_end_was_deleted_fails_the_check_as_incomplete(tmp_path, capsys):
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    stored_backtest(tmp_path, capsys, url)
    with sqlite3.connect(db) as conn:
        # the run's last event, Completed: what is left is a prefix with no end recorded
        conn.execute("DELETE FROM stored_events WHERE rowid = (SELECT max(rowid) "
                     "FROM stored_events)")
    code, out = replay(capsys, url, "--check")
    assert code == 1
    assert "INCOMPLETE: no end recorded" in out


def test_an_event_deleted_inside_a_run_fails_the_check(tmp_path, capsys):
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    stored_backtest(tmp_path, capsys, url)
    with sqlite3.connect(db) as conn:
        rowids = [r[0] for r in conn.execute("SELECT rowid FROM stored_events ORDER BY rowid")]
        conn.execute("DELETE FROM stored_events WHERE rowid = ?", (rowids[len(rowids) // 2],))
    code, out = replay(capsys, url, "--check")
    assert code == 1
    assert "DIFFERS" in out


def test_a_candles_file_changed_after_the_run_fails_the_check(tmp_path, capsys):
    candles = copy_of_candles(tmp_path)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    run = stored_backtest(tmp_path, capsys, url, candles)
    lines = candles.read_text().splitlines(keepends=True)
    *prices, volume = lines[-1].rstrip("\n").split(",")
    lines[-1] = ",".join([*prices, str(Decimal(volume) + 1)]) + "\n"
    candles.write_text("".join(lines))
    assert len(load_candles(candles)) == run["candles"]  # still valid, not the same file
    code, out = replay(capsys, url, "--check")
    assert code == 1
    assert f"backtest {run['run_id']}: cannot re-run: CANDLES_CHANGED" in out
    assert str(candles) in out


def test_a_missing_candles_file_fails_the_check(tmp_path, capsys):
    candles = copy_of_candles(tmp_path)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    run = stored_backtest(tmp_path, capsys, url, candles)
    candles.unlink()
    code, out = replay(capsys, url, "--check")
    assert code == 1
    assert f"backtest {run['run_id']}: cannot re-run: CANDLES_UNREADABLE" in out
    assert str(candles) in out


def test_a_run_whose_candles_moved_checks_with_the_folder_they_are_in_now(tmp_path, capsys):
    """Runs stored on one machine, audited on another: --candles-dir names the folder the
    file is in there; the file must still be the one the run recorded, byte for byte."""
    candles = copy_of_candles(tmp_path)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    run = stored_backtest(tmp_path, capsys, url, candles)
    elsewhere = tmp_path / "archive"
    elsewhere.mkdir()
    candles.rename(elsewhere / candles.name)
    assert replay(capsys, url, "--check")[0] == 1
    code, out = replay(capsys, url, "--check", "--candles-dir", str(elsewhere))
    assert code == 0, out
    assert f"backtest {run['run_id']}: identical ({run['events']} events)" in out
    other = elsewhere / candles.name
    other.write_text(other.read_text().replace("\n", "\r\n"))  # same candles, other bytes
    code, out = replay(capsys, url, "--check", "--candles-dir", str(elsewhere))
    assert code == 1
    assert f"backtest {run['run_id']}: cannot re-run: CANDLES_CHANGED" in out


# --- interrupted runs -----------------------------------------------------------------------


class StopAfter:
    """An on_progress that stops the run, as Ctrl-C would, once it passed ``candle``."""

    def __init__(self, candle: int, error: BaseException):
        self.candle, self.error = candle, error

    def __call__(self, done: int, total: int) -> None:
        if done >= self.candle:
            raise self.error


def interrupted_run(url: str, stop: StopAfter, batch: int | None = None, monkeypatch=None):
    if batch is not None:
        from application import backtest

        monkeypatch.setattr(backtest._Steps, "BATCH_EVENTS", batch)
    with pytest.raises(type(stop.error)):
        run_backtest_on(load_candles(UNITTEST), DcaConfig.from_mapping(BOT),
                        fee_rate=Decimal("0.001"), balance=None, store_url=url, seed="stop",
                        on_progress=stop)


@pytest.mark.parametrize("stop_at", [500, 4_000, 9_000])
def test_an_interrupted_run_keeps_whole_steps_marked_interrupted_and_checks_as_a_prefix(
    tmp_path, capsys, monkeypatch, stop_at
):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    interrupted_run(url, StopAfter(stop_at, KeyboardInterrupt()), batch=7,
                    monkeypatch=monkeypatch)
    app = open_trading(url)
    try:
        [run] = rebuild_all(app).backtests
        stored = list(read_log(app))
    finally:
        app.close()
    assert run.status == "interrupted" and run.interruption == "stopped by its user"
    assert stored[-1].topic.endswith("BacktestRun.Interrupted")
    code, out = replay(capsys, url, "--check")
    assert code == 0, out
    assert "BacktestRun: 1 (1 interrupted)" in out
    assert f"interrupted (stopped by its user); its {len(stored) - 1} stored events are " \
           "identical to the first" in out


def test_an_engine_error_mid_run_is_recorded_as_the_reason(tmp_path, capsys, monkeypatch):
    from domain.errors import DomainError

    url = f"sqlite:///{tmp_path / 'run.db'}"
    interrupted_run(url, StopAfter(3_000, DomainError("the venue went away", code="GONE")),
                    batch=7, monkeypatch=monkeypatch)
    code, out = replay(capsys, url, "--check")
    assert code == 0, out
    assert "interrupted (GONE: the venue went away)" in out


def test_a_run_interrupted_before_anything_was_stored_leaves_nothing(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    interrupted_run(url, StopAfter(0, KeyboardInterrupt()))  # the first batch is never full
    code, out = replay(capsys, url, "--check")
    assert code == 0
    assert "0 events rebuilt" in out and "no stored backtests to check" in out


def test_a_tampered_event_in_an_interrupted_run_fails_the_check(tmp_path, capsys, monkeypatch):
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    interrupted_run(url, StopAfter(4_000, KeyboardInterrupt()), batch=7,
                    monkeypatch=monkeypatch)
    with sqlite3.connect(db) as conn:
        rowid, state = conn.execute(
            "SELECT rowid, state FROM stored_events WHERE topic LIKE '%Deal.Closed' "
            "ORDER BY rowid LIMIT 1").fetchone()
        tampered = state.replace(b'"_data_":"take_profit"', b'"_data_":"stop_loss"')
        assert tampered != state
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (tampered, rowid))
    code, out = replay(capsys, url, "--check")
    assert code == 1
    assert "DIFFERS" in out


# --- without --check ------------------------------------------------------------------------


def test_replay_reports_the_aggregates_rebuilt_per_type(tmp_path, capsys):
    candles = copy_of_candles(tmp_path)
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    run = stored_backtest(tmp_path, capsys, url, candles)
    with sqlite3.connect(db) as conn:
        orders = conn.execute("SELECT count(DISTINCT originator_id) FROM stored_events "
                              "WHERE topic LIKE '%Order.Submitted'").fetchone()[0]
    candles.unlink()  # a plain replay only reads the log, it re-runs nothing
    code, out = replay(capsys, url)
    assert code == 0, out
    deals = run["deals_closed"] + run["deals_open"]
    assert f"{run['events']} events rebuilt into {deals + orders + 2} aggregates" in out
    lines = [line.strip() for line in out.splitlines()]
    assert lines[1:5] == ["BacktestRun: 1 (1 completed)", "Bot: 1", f"Deal: {deals}",
                          f"Order: {orders}"]
    assert "identical" not in out


def test_a_corrupt_event_is_reported_and_fails_the_replay(tmp_path, capsys):
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    stored_backtest(tmp_path, capsys, url)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = 5", (b"{not json",))
    code, out = replay(capsys, url)
    assert code == 1
    assert "FAILED aggregate" in out


# --- property: any stored run re-runs identically -------------------------------------------


@st.composite
def walk_rows(draw) -> list[tuple[int, str, str, str, str]]:
    n = draw(st.integers(min_value=1, max_value=80))
    cents = draw(st.integers(min_value=5_000, max_value=15_000))
    ts = 1_700_000_040_000
    rows = []
    for _ in range(n):
        open_ = cents if draw(st.booleans()) else max(100, cents + draw(
            st.integers(min_value=-200, max_value=200)))
        close = max(100, open_ + draw(st.integers(min_value=-300, max_value=300)))
        high = max(open_, close) + draw(st.integers(min_value=0, max_value=150))
        low = max(50, min(open_, close) - draw(st.integers(min_value=0, max_value=150)))
        rows.append((ts, *(f"{v / 100:.2f}" for v in (open_, high, low, close))))
        cents = close
        ts += 60_000 * draw(st.sampled_from([1, 1, 1, 1, 2, 7]))  # some gaps
    return rows


def write_walk(folder: Path, rows) -> Path:
    """The rows of :func:`walk_rows` as a candle file in ``folder``."""
    path = folder / "walk.csv"
    path.write_text("timestamp_ms,open,high,low,close,volume\n"
                    + "".join(f"{t},{o},{h},{lo},{c},1\n" for t, o, h, lo, c in rows))
    return path


configs = dca_configs(stop_losses=(None, "1.5", "5"), cooldowns=(0, 0, 60, 150))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=walk_rows(), config=configs,
       balance=st.sampled_from([None, None, "150", "1000"]),
       fee_rate=st.sampled_from(["0", "0.001", "0.00075"]),
       seed=st.text(alphabet="abcdef0123456789", min_size=1, max_size=12))
def test_a_stored_run_re_runs_into_an_identical_event_stream(rows, config, balance, fee_rate,
                                                             seed):
    with tempfile.TemporaryDirectory() as folder:
        path = write_walk(Path(folder), rows)
        url = f"sqlite:///{Path(folder) / 'run.db'}"
        result = run_backtest_on(
            load_candles(path), DcaConfig.from_mapping(config), fee_rate=Decimal(fee_rate),
            balance=None if balance is None else Decimal(balance), store_url=url, seed=seed,
        )
        app = open_trading(url)
        try:
            report = rebuild_all(app)
            assert not report.failures
            [run] = report.backtests
            assert run.id == result.run_id
            fresh = rerun_backtest(run)
            stored = stored_run_events(app, {n.originator_id for n in fresh})
            assert len(stored) == result.summary["events"] == len(list(read_log(app)))
            assert compare_streams(stored, fresh) is None
        finally:
            app.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=walk_rows(), config=configs, stop=st.integers(min_value=0, max_value=80),
       batch=st.integers(min_value=1, max_value=40))
def test_a_run_interrupted_anywhere_stored_a_prefix_of_the_whole_run(rows, config, stop,
                                                                    batch):
    from application import backtest

    with tempfile.TemporaryDirectory() as folder:
        path = write_walk(Path(folder), rows)
        url = f"sqlite:///{Path(folder) / 'run.db'}"
        original = backtest._Steps.BATCH_EVENTS
        backtest._Steps.BATCH_EVENTS = batch
        try:
            run_backtest_on(load_candles(path), DcaConfig.from_mapping(config),
                            fee_rate=Decimal("0.001"), balance=None, store_url=url,
                            seed="cut", on_progress=StopAfter(stop, KeyboardInterrupt()))
        except KeyboardInterrupt:
            pass
        finally:
            backtest._Steps.BATCH_EVENTS = original
        app = open_trading(url)
        try:
            report = rebuild_all(app)
            assert not report.failures
            for run in report.backtests:  # none when nothing was stored yet
                assert run.status in ("completed", "interrupted")
                passed, found = check_stored_run(app, run, rerun_backtest(run))
                assert passed, found
        finally:
            app.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=walk_rows(), config=configs, cut=st.tuples(st.integers(0, 40), st.integers(1, 60)))
def test_a_run_over_a_period_re_runs_into_an_identical_event_stream(rows, config, cut):
    from application.bootstrap import backtest

    start = rows[min(cut[0], len(rows) - 1)][0]
    end = start + cut[1] * 60_000
    with tempfile.TemporaryDirectory() as folder:
        path = write_walk(Path(folder), rows)
        url = f"sqlite:///{Path(folder) / 'run.db'}"
        result = backtest(str(path), DcaConfig.from_mapping(config), fee_rate=Decimal("0.001"),
                          store_url=url, seed="period", period=(start, end))
        assert result.summary["candles"] == sum(1 for t, *_ in rows if start <= t < end)
        app = open_trading(url)
        try:
            [run] = rebuild_all(app).backtests
            assert run.period == (start, end)
            passed, found = check_stored_run(app, run, rerun_backtest(run))
            assert passed, found
        finally:
            app.close()


def test_steps_appended_in_batches_give_the_log_of_a_transaction_per_step(monkeypatch):
    """A backtest appends its steps' events a few thousand at a time; the log must be the
    one a transaction per step writes: same events, same data, same order."""
    from application import backtest

    candles = load_candles(UNITTEST)
    config = DcaConfig.from_mapping(BOT)
    logs = []
    for batch in (1, backtest._Steps.BATCH_EVENTS, 7):  # per step, default, odd sizes
        monkeypatch.setattr(backtest._Steps, "BATCH_EVENTS", batch)
        app = open_trading("memory")
        try:
            result = run_backtest_on(candles, config, fee_rate=Decimal("0.001"), balance=None,
                                     store_url="memory", seed="batches", trading=app)
            logs.append(list(read_log(app)))
        finally:
            app.close()
        assert result.summary["events"] == len(logs[-1]) > 100
    assert compare_streams(logs[0], logs[1]) is None
    assert compare_streams(logs[0], logs[2]) is None
