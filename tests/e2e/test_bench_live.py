"""``scripts/bench_live.py``, short: a few bots seeded by COPY and through the application,
traded by an engine process, read by a second client through an api process, the read
models kept by a projections process; the report names every process and figure the
issue asks for, and ends with its verdict. No speed is asserted (the machine may be shared):
only that everything was measured."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_three_processes_measured_from_outside(postgres_url):
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_live.py"),
            "--bots",
            "30",
            "--speed",
            "5",
            "--seconds",
            "6",
            "--warm-up",
            "1",
            "--api-rate",
            "20",
            "--api-users",
            "2",
            "--no-sqlite",
            "--database",
            postgres_url,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    out = run.stdout
    print(out, run.stderr[-3000:])  # the benchmark's own report, shown when this fails
    logs = re.search(r"\(the processes' logs: (\S+)\)", out)  # kept by a run that missed
    if logs:
        shutil.rmtree(logs[1], ignore_errors=True)
    assert run.returncode == 0
    # 3 users: one copied from a template, two registered (they log in for the load)
    assert re.search(r"seeded 1/1 users", run.stderr), run.stderr
    row = re.search(r"^postgresql \| 30 \| ([\d.]+) \| ", out, re.M)
    assert row and float(row[1]) > 0, out  # candles were delivered and stepped
    procs = re.search(
        r"started: projections [\d.]+ s, engine [\d.]+ s, api [\d.]+ s; per "
        r"process: projections \d+% CPU / \d+ MB, engine \d+% CPU / \d+ MB, "
        r"api \d+% CPU / \d+ MB",
        out,
    )
    assert procs, out
    for name in ("portfolio", "bots"):  # the second client's answers were all good
        assert re.search(rf"GraphQL {name}: [\d.]+/s answered .* 0 failed", out), out
    assert re.search(
        r"(MET   |MISSED) postgresql: projections within 5 s of the log: at "
        r"most [\d.]+ s \(\d+ events\) behind",
        out,
    ), out
    assert re.search(
        r"\n(MET|MISSED): 30 bots at 5 candles/s on PostgreSQL \(one engine, "
        r"one api, one projections process\)",
        out,
    ), out
