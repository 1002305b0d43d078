"""The kill drill, short: two engine workers, one api and one projections process on
PostgreSQL with a 2 s lease; one engine worker (the one holding the most bots) and the
projections process are killed with -9 while the bots trade. Every bot interrupted (by the
kill, or moved when the restarted worker takes its share) is leased again within the lease
time and writes again, no client order id is used twice, no aggregate's
versions have a gap, and the read models equal a full rebuild (``scripts/drill_kill.py``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_engine_and_the_projections_killed_while_bots_trade(postgres_url):
    base = postgres_url.split("?")[0]  # the drill makes (and drops) a schema of its own
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "drill_kill.py"), "--kills",
         "engine,projections", "--every", "6", "--lease-seconds", "2", "--bots", "8",
         "--database", base], check=False, capture_output=True, text=True, timeout=300, cwd=ROOT)
    out = run.stdout
    print(out)  # the drill's own report, shown when this fails
    assert run.returncode == 0, [line for line in out.splitlines() if "MET" not in line]
    resumed = re.search(r"killed engine-\d \(w-\w+, (\d+) bots\): leased again in "
                        r"[\d.]+-([\d.]+) s\n", out)
    assert resumed and int(resumed[1]) > 0 and float(resumed[2]) <= 2.0, out
    assert re.search(r"MET    bots resumed: \d+ interruptions .* 0 later than the lease "
                     r"\(2 s\) or never; .* 0 wrote nothing after", out), out
    assert "killed projections" in out
    for line in ("MET    client order ids used twice: 0",
                 "MET    aggregates with a gap in their versions: 0"):
        assert line in out, out
    assert re.search(r"MET    projections vs a full rebuild at \d+ events: equal", out), out
    assert out.rstrip().endswith("\nMET"), out
