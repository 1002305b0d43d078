"""Benchmark: an engine worker's lease tick and renewal round, in processor time, on a copy
of a seeded schema (as ``bench_step.py`` copies it), between the candles of a live run.

    .venv/bin/python scripts/bench_lease_tick.py --template SCHEMA --candles 100 \\
        [--database postgresql://postgres@127.0.0.1:5432/test]

``SCHEMA``: running paper bots seeded as ``bench_live.py`` seeds them. The worker takes every
bot at its first tick, then the shipped month's candles are stepped one after another
(the first: every bot opens a deal; take-profit waves later) and after every second one
(a tick each quarter lease, 2.5 s, at 1 candle/s) one lease tick (``LeaseManager.tick``:
the bots that need an engine read from the log, the shares) and one renewal round (the
renewal thread's ``extend``) are timed with this thread's processor time. The steps'
survivors are frozen as a server's live loop freezes them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_step import DEFAULT_URL, copied  # noqa: E402


def run(url: str, candles: int) -> tuple[list[float], list[float], int]:
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series
    from application.bootstrap import SHIPPED_FIRST, open_runtime
    from application.paper_heap import StepSurvivors
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ({**os.environ, "TRADETAPE_DATABASE_URL": url})
    runtime = open_runtime(settings, role="engine")
    paper, leases = runtime.paper, runtime.leases
    leases.seconds = 3600.0  # no renewal thread needed while we measure
    leases.store.join(leases.seconds)
    leases.tick()  # the worker's first share: every bot
    print(f"  following {len(paper.bot_ids)} bots", file=sys.stderr, flush=True)
    paper.survivors = StepSurvivors()
    series = load_candles(shipped_series(SHIPPED_FIRST))
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    ticks, renewals, events = [], [], 0
    try:
        for i in range(min(candles, len(series))):
            o, h, low, c = series.exact(i)
            events += paper.on_candle("BTC/USDT", int(series.timestamps[i]), o, h, low, c,
                                      epoch + timedelta(minutes=i + 1))
            if i % 2 == 1 and i > 1:  # (not the tick right after the first close)
                cpu = time.thread_time()
                leases.tick()
                ticks.append(time.thread_time() - cpu)
                cpu = time.thread_time()
                leases.store.extend(leases.seconds)
                renewals.append(time.thread_time() - cpu)
    finally:
        leases.store.leave()
        runtime.stop()
    return ticks, renewals, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", required=True, help="a seeded schema to copy")
    parser.add_argument("--candles", type=int, default=100)
    parser.add_argument("--database", default=DEFAULT_URL)
    args = parser.parse_args()
    with copied(args.database, args.template, "tick") as url:
        ticks, renewals, events = run(url, args.candles)
    print(f"{events} events over {args.candles} candles; {len(ticks)} lease ticks: "
          f"{sum(ticks) / len(ticks) * 1000:.1f} ms each (max {max(ticks) * 1000:.1f}), "
          f"renewal rounds {sum(renewals) / len(renewals) * 1000:.2f} ms each "
          "(processor time of this thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
