"""``tradetape compare``: several configurations on the same candles, each run exactly as
``tradetape backtest`` runs it alone, ranked."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.marketdata.shipped import shipped_series
from api.cli import main
from api.commands.compare import ranked

BTC = shipped_series("binance_BTC_USDT-1m-2025-11.csv")
BASE = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 5, "price_deviation_pct": "0.8", "safety_volume_scale": "1.6",
    "safety_step_scale": "1.3", "take_profit_pct": "1.2",
}
CONFIGS = {
    "patient.json": {**BASE, "max_safety_orders": 6, "price_deviation_pct": "1"},
    "busy.json": {**BASE, "stop_loss_pct": "5"},
    "wide.json": {**BASE, "max_safety_orders": 3, "price_deviation_pct": "2",
                  "take_profit_pct": "1.5"},
}


@pytest.fixture
def config_files(tmp_path) -> list[str]:
    paths = []
    for name, config in CONFIGS.items():
        path = tmp_path / name
        path.write_text(json.dumps(config))
        paths.append(str(path))
    return paths


def cli_json(capsys, *args: str) -> dict:
    code = main([*args, "--json", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_each_run_is_the_backtest_of_that_configuration_alone(capsys, config_files):
    compared = cli_json(capsys, "compare", "--candles", str(BTC), "--config", *config_files,
                        "--from", "2025-11-03", "--balance", "5000")
    assert compared["candles"] == 28 * 1440  # from Nov 3 to the end of November
    assert sorted(run["config"] for run in compared["runs"]) == sorted(config_files)
    for run in compared["runs"]:
        alone = cli_json(capsys, "backtest", "--candles", str(BTC), "--config", run["config"],
                         "--seed", "compare", "--from", "2025-11-03", "--balance", "5000")
        assert (alone.pop("from_ms"), alone.pop("to_ms")) == (compared["from_ms"], None)
        assert {k: v for k, v in run.items() if k != "config"} == alone
        assert Decimal(run["total_pnl"]) == (Decimal(run["realized_pnl"])
                                             + Decimal(run["unrealized_pnl"]))
    assert compared["market_change"] == alone["market_change"]


def test_runs_are_ranked_best_first_by_the_figure_asked(capsys, config_files):
    args = ("compare", "--candles", str(BTC), "--config", *config_files)
    by_total = [Decimal(r["total_pnl"]) for r in cli_json(capsys, *args)["runs"]]
    assert by_total == sorted(by_total, reverse=True)
    by_drawdown = [Decimal(r["max_drawdown"])
                   for r in cli_json(capsys, *args, "--sort", "max_drawdown")["runs"]]
    assert by_drawdown == sorted(by_drawdown)


def test_a_run_without_the_figure_ranks_last_and_ties_keep_their_order():
    runs = [{"config": "a", "profit_factor": None}, {"config": "b", "profit_factor": 2},
            {"config": "c", "profit_factor": 3}, {"config": "d", "profit_factor": 2}]
    assert [r["config"] for r in ranked(runs, "profit_factor")] == ["c", "b", "d", "a"]


def test_a_bad_configuration_is_named_and_nothing_runs(tmp_path, capsys, config_files):
    bad = tmp_path / "typo.json"
    bad.write_text(json.dumps({**BASE, "take_proft_pct": "1"}))
    code = main(["compare", "--candles", str(BTC), "--config", *config_files, str(bad)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(f"error: INVALID_CONFIG: {bad}: UNKNOWN_FIELD")


def test_the_human_table_ranks_the_configurations(capsys, config_files):
    ranked_json = cli_json(capsys, "compare", "--candles", str(BTC), "--config", *config_files)
    assert main(["compare", "--candles", str(BTC), "--config", *config_files,
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if ".json" in line]
    assert [Path(r["config"]).name for r in ranked_json["runs"]] == [
        next(name for name in CONFIGS if name in row) for row in rows]
    assert "ranked by total pnl" in out


def test_output_cut_short_by_its_reader_is_no_error():
    """`tradetape backtest --json | head -1`: the reader stops early; no traceback."""
    tradetape = Path(sys.executable).with_name("tradetape")
    process = subprocess.run(
        f"{tradetape} backtest --candles {BTC} --config {Path('api/examples/dca_bot.json')} "
        "--json --deals --no-progress | head -1",
        shell=True, capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2])
    assert process.stdout == "{\n"
    assert "Traceback" not in process.stderr and process.stderr == ""


def test_the_plot_draws_every_equity_curve_ending_at_its_total(tmp_path, capsys, config_files):
    from decimal import Decimal as D

    from application.bootstrap import compare
    from domain.dca import DcaConfig

    png = tmp_path / "compare.png"
    cli_json(capsys, "compare", "--candles", str(BTC), "--config", *config_files,
             "--plot", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    configs = [DcaConfig.from_mapping(c) for c in CONFIGS.values()]
    _, results = compare(str(BTC), configs, fee_rate=D("0.001"), keep_equity=True)
    for result in results:
        assert len(result.equity) == result.summary["candles"]
        assert abs(result.equity[-1] - float(result.summary["total_pnl"])) < 1e-6
