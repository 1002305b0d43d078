"""``tradetape candles fetch`` against the local Binance simulator, through the real ccxt
class: killed mid-way and resumed, the file is the one an uninterrupted fetch writes, and it
backtests. The expected bytes are the shipped file the simulator serves (written with the
same plain decimals), never the command's own output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000
LINES = BTC_USDT_CANDLES.read_text().splitlines(keepends=True)
T0 = int(LINES[1].split(",")[0])
DAY = 1440


def command(out: Path, *, to_ms: int = T0 + 2 * DAY * MINUTE, page: int = 20) -> list[str]:
    return [sys.executable, "-m", "api.cli", "candles", "fetch", "--exchange", "binance",
            "--sandbox", "--pair", "BTC/USDT", "--timeframe", "1m", "--from",
            "2025-11-01T00:00:00Z", "--to", str(to_ms), "--out", str(out),
            "--page-size", str(page)]


def environment(sim) -> dict[str, str]:
    return {**os.environ, "TRADETAPE_SANDBOX_HOST": sim.url}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture
def sim():
    # Three days have passed on the simulated exchange; its clock stands still.
    with running_simulator(speed=0, start_ms=T0 + 3 * DAY * MINUTE) as handle:
        yield handle


def test_killed_and_resumed_gives_the_file_of_one_fetch_and_it_backtests(sim, tmp_path):
    env = environment(sim)
    whole = tmp_path / "whole.csv"
    resumed = tmp_path / "resumed.csv"

    done = run(command(whole), env)
    stopped = []
    # Stopped three times mid-way: Ctrl-C, then killed twice.
    for at_lines, how in ((300, signal.SIGINT), (1200, signal.SIGKILL), (2300, signal.SIGKILL)):
        process = subprocess.Popen(command(resumed), cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while lines_in(resumed) < at_lines and process.poll() is None:
            time.sleep(0.005)
        if process.poll() is None:
            process.send_signal(how)
        _, err = process.communicate()
        stopped.append((process.returncode, err.strip().splitlines()[-1:]))
    last = run(command(resumed), env)

    assert done.returncode == 0, done.stderr
    assert last.returncode == 0, last.stderr
    assert stopped == [(130, ["interrupted"]), (-9, []), (-9, [])]  # none had finished
    assert whole.read_bytes() == BTC_USDT_CANDLES.read_bytes()[:len("".join(LINES[:1 + 2 * DAY]))]
    assert resumed.read_bytes() == whole.read_bytes()
    backtest = run([sys.executable, "-m", "api.cli", "backtest", "--candles", str(resumed),
                    "--config", "api/examples/dca_bot.json", "--json", "--no-progress"], env)
    assert backtest.returncode == 0, backtest.stderr
    summary = json.loads(backtest.stdout)
    assert summary["candles"] == 2 * DAY and summary["gaps"] == 0


def test_run_again_it_adds_only_what_closed_since(tmp_path):
    with running_simulator(speed=0, start_ms=T0 + 30 * MINUTE + 20_000) as sim:  # 30 is open
        _adds_only_what_closed_since(sim, tmp_path)


def _adds_only_what_closed_since(sim, tmp_path):
    env = environment(sim)
    out = tmp_path / "btc.csv"

    first = run(command(out, to_ms=T0 + DAY * MINUTE, page=1000), env)
    after_first = out.read_bytes()
    again = run(command(out, to_ms=T0 + DAY * MINUTE, page=1000), env)
    sim.set_time(T0 + 45 * MINUTE)
    later = run(command(out, to_ms=T0 + DAY * MINUTE, page=1000), env)

    assert after_first == "".join(LINES[:31]).encode()
    assert "30 candles added" in first.stdout
    assert again.returncode == 0 and "up to date" in again.stdout
    assert out.read_bytes() == "".join(LINES[:46]).encode()
    assert "15 candles added" in later.stdout


def test_an_exchange_gone_away_is_named_with_no_traceback(tmp_path):
    env = {**os.environ, "TRADETAPE_SANDBOX_HOST": "http://127.0.0.1:9"}  # nothing listens

    done = run(command(tmp_path / "btc.csv"), env)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: EXCHANGE_UNAVAILABLE: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "btc.csv").exists()


def test_a_pair_the_exchange_does_not_list_is_named(sim, tmp_path):
    args = command(tmp_path / "x.csv")
    args[args.index("BTC/USDT")] = "DOGE/EUR"

    done = run(args, environment(sim))

    assert done.returncode == 2
    assert done.stderr.strip() == ("error: PAIR_NOT_TRADED: binance does not list the spot "
                                   "pair DOGE/EUR")
    assert not (tmp_path / "x.csv").exists()


def test_a_file_of_another_timeframe_is_refused_untouched(sim, tmp_path):
    five_minutes = ROOT / "adapters/marketdata/data/freqtrade_ETH_BTC-5m.csv"
    out = tmp_path / "eth.csv"
    out.write_bytes(five_minutes.read_bytes())

    done = run(command(out), environment(sim))

    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: CANDLES_FILE_MISMATCH: {out} holds candles 300 s "
                                   "apart, not 1m")
    assert out.read_bytes() == five_minutes.read_bytes()
