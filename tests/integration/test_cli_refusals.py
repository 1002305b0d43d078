"""Hostile CLI input, run as a user runs it (the real ``tradetape`` process): each one is
refused with exit != 0 and one line on stderr naming a code, no traceback, nothing stored.
The nine inputs that printed a traceback, and the duplicate key that was silently resolved
(issue 10, findings 2 and 11)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stubs import CONFIG_INPUT

CANDLES = "timestamp_ms,open,high,low,close,volume\n" + "".join(
    f"{1_700_000_040_000 + i * 60_000},100,101,99,100,1\n" for i in range(5))
GOOD = json.dumps(CONFIG_INPUT)


def a_config(**overrides: object) -> str:
    return json.dumps({**CONFIG_INPUT, **overrides})


# (command, config file content (text or bytes), extra options, the code it must name)
CASES = {
    "base order quote 1e999999": (
        "backtest", a_config(base_order_quote="1e999999"), [], "EXPONENT_OUT_OF_RANGE"),
    "dca-plan price 1e-999999": (
        "dca-plan", GOOD, ["--price", "1e-999999"], "EXPONENT_OUT_OF_RANGE"),
    "cooldown 99999999999999999999999": (
        "backtest", a_config(cooldown_seconds=99999999999999999999999), [], "OUT_OF_RANGE"),
    "backtest --from 99999999999999999999": (
        "backtest", GOOD, ["--from", "99999999999999999999"], "INVALID_TIME"),
    "binary config": ("dca-plan", b"\xff\xfe\x00\x01\x80binary", [], "CONFIG_NOT_TEXT"),
    "config nested 100,000 deep (dca-plan)": (
        "dca-plan", "[" * 100_000 + "]" * 100_000, [], "CONFIG_TOO_DEEP"),
    "config nested 100,000 deep (backtest)": (
        "backtest", "{\"a\":" * 100_000 + "1" + "}" * 100_000, [], "CONFIG_TOO_DEEP"),
    "store under /proc": (
        "backtest", GOOD, ["--store", "sqlite:////proc/nope/x.sqlite"], "DATABASE_UNAVAILABLE"),
    "duplicate key": (
        "backtest", GOOD[:-1] + ', "take_profit_pct": "9"}', [], "CONFIG_DUPLICATE_KEY"),
    "Arabic-Indic digits": ("dca-plan", a_config(take_profit_pct="١٢"), [], "INVALID_NUMBER"),
    "digit grouping": ("backtest", a_config(safety_volume_scale="1_0"), [], "INVALID_NUMBER"),
    "fee rate 1e999999": ("backtest", GOOD, ["--fee-rate", "1e999999"],
                          "EXPONENT_OUT_OF_RANGE"),
    "a 2 MB configuration": ("dca-plan", " " * 2_000_000 + GOOD, [], "CONFIG_TOO_LARGE"),
    "a bot that waits for signals": (
        "backtest", a_config(start_condition="signal"), [], "SIGNAL_BOT_NOT_BACKTESTABLE"),
    "an unknown start condition": (
        "backtest", a_config(start_condition="whenever"), [], "INVALID_START_CONDITION"),
}


def tradetape(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], check=False, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_cli_input_is_one_line_naming_a_code_and_stores_nothing(tmp_path, case):
    command, content, extra, code = CASES[case]
    config = tmp_path / "bot.json"
    if isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content, encoding="utf-8")
    store = tmp_path / "store" / "runs.sqlite"
    if command == "dca-plan":
        args = ["dca-plan", "--config", str(config), *(extra or ["--price", "100"])]
    else:
        (tmp_path / "c.csv").write_text(CANDLES)
        store_option = [] if "--store" in extra else ["--store", f"sqlite:///{store}"]
        args = ["backtest", "--candles", "c.csv", "--config", str(config), "--no-progress",
                *store_option, *extra]

    done = tradetape(*args, cwd=tmp_path)

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}"), done.stderr
    assert done.stdout == ""
    assert not store.exists() or _events(store) == 0


def _events(path: Path) -> int:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables
                   if t.endswith("events"))


def test_the_same_configuration_without_the_hostile_part_runs(tmp_path):
    """The cases above fail for what they change, not for how the command is run."""
    (tmp_path / "bot.json").write_text(GOOD)
    (tmp_path / "c.csv").write_text(CANDLES)
    done = tradetape("backtest", "--candles", "c.csv", "--config", "bot.json", "--no-progress",
                     "--json", "--store", f"sqlite:///{tmp_path / 'runs.sqlite'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"] > 0
