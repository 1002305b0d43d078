"""``scripts/bench_projections.py`` shows where the rebuild of all projections spends its
Python: each part of its measured first events, per event and as a share, largest first."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from projections.rebuild import Plan

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_projections.py"


def bench():
    spec = importlib.util.spec_from_file_location("bench_projections", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_part_of_the_measured_rebuild_is_shown_per_event_as_a_share_and_in_cpu(
        capsys):
    plan = Plan([["audit", "pnl", "leaderboard", "equity"]], measured_events=2000,
                decode=0.02, costs={"audit": 0.01, "pnl+leaderboard+equity": 0.07},
                cpu={"": 0.004, "audit": 0.002, "pnl+leaderboard+equity": 0.014})
    bench().print_shares(plan)
    lines = capsys.readouterr().out.splitlines()
    assert "2,000 events" in lines[0]
    # 0.07 s over 2,000 events is 35 us each, 70% of the 0.1 s measured, 0.014 s of the
    # processor 7 us each; then decoding (10 us, 20%, 2 us), then audit (5 us, 10%, 1 us).
    assert [line.split() for line in lines[1:]] == [
        ["pnl+leaderboard+equity", "35.0", "us/event", "70.0%", "7.0", "us/event", "of",
         "processor"],
        ["decoding", "(shared)", "10.0", "us/event", "20.0%", "2.0", "us/event", "of",
         "processor"],
        ["audit", "5.0", "us/event", "10.0%", "1.0", "us/event", "of", "processor"],
    ]


def test_nothing_is_shown_when_no_part_was_measured(capsys):
    bench().print_shares(Plan([["audit"]]))
    assert capsys.readouterr().out == ""
