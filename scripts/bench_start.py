"""Benchmark: how long ``tradetape serve`` takes from launch to ``/health`` green on a big log.

    .venv/bin/python scripts/bench_start.py --bots 10000 --events 10000000 \
        [--database postgresql://postgres@127.0.0.1:5432/test?schema=bench_start_...] \
        [--fresh] [--starts 2] [--profile] [--timeout 300]

The log (kept in its own PostgreSQL schema for the next runs unless ``--fresh``) holds
``--bots`` running paper bots, 10 per user, each user with one paper account, and about
``--events`` events, seeded by ``scripts/clone_seed.py`` (shared with bench_live). It is
made by the application itself for one user (an account, a deposit, 10 bots with
different take-profits, paper trading on a saw-tooth market until the user's share of
the events is reached, ending with deals and resting orders open), then that user's
stored events are copied for every other user with every id renamed (ids derived from an
owner, like its bot roster's, derived again): the same events the application would write
for them, written with ``COPY`` instead of one save at a time. The read models are copied
the same way (``scripts/clone_views.py``: the first two users' rebuilt, then their rows
written again for every user with the same ids renamed), so no rebuild over the whole log
is needed; ``--projections`` instead rebuilds only those once over the whole log.

Then ``serve`` is started ``--starts`` times (stopped gracefully in between: the first start
after seeding takes the snapshots the next ones read); each line says seconds to the first
answer of ``/health``, to green, and when each of its parts was first green. The last line says
``MET`` or ``MISSED`` for green within 5 s on the last start. ``--profile`` also runs one
start in this process under cProfile and prints the top of it. The machine may be shared:
compare the ratios of one run rather than figures of different runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from clone_seed import ensure_schema, log, seed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
GOAL_SECONDS = 5.0


def head_of(url: str) -> int:
    from application.bootstrap import open_trading

    trading = open_trading(url)
    try:
        return trading.recorder.max_notification_id() or 0
    finally:
        trading.close()


# --- timing a start -----------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_start(url: str, timeout: float, logs: Path
               ) -> tuple[float | None, float | None, dict, dict[str, float]]:
    """(seconds to the first /health answer, seconds to green, the last health seen, seconds
    until each part was first green)."""
    port = free_port()
    env = {**os.environ, "TRADETAPE_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    out = (logs / f"serve-{port}.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen([str(ROOT / ".venv/bin/tradetape"), "serve", "--port",
                                str(port), "--database", url], stdout=out,
                               stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    first = green = None
    health: dict = {}
    parts: dict[str, float] = {}
    try:
        while time.perf_counter() - began < timeout and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                            timeout=5) as response:
                    health = json.loads(response.read())
            except urllib.error.HTTPError as error:  # red: 503 with the same body
                health = json.loads(error.read() or b"{}")
            except OSError:
                time.sleep(0.05)
                continue
            first = first or time.perf_counter() - began
            for name, part in health.items():
                if isinstance(part, dict) and part.get("status") == "green":
                    parts.setdefault(name, time.perf_counter() - began)
            if health.get("status") == "green":
                green = time.perf_counter() - began
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
    return first, green, health, parts


def profile_start(url: str) -> None:
    import cProfile
    import pstats

    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ({"TRADETAPE_DATABASE_URL": url})
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    runtime = open_runtime(settings)
    opened = time.perf_counter() - began
    runtime.start()
    profiler.disable()
    log(f"profiled start: open {opened:.2f} s, start {time.perf_counter() - began:.2f} s")
    runtime.stop()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000,
                        help="running paper bots in the seeded log (10 per user; default 1000)")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="about this many events in the seeded log (default 1,000,000)")
    parser.add_argument("--database", default=None,
                        help="a PostgreSQL URL with its schema (default: the local test "
                             "database, schema bench_start_BOTS_EVENTS, kept for reruns)")
    parser.add_argument("--fresh", action="store_true",
                        help="drop that schema and seed it again")
    parser.add_argument("--starts", type=int, default=2,
                        help="serve starts timed one after another (the first after seeding "
                             "builds the snapshots; default 2)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a start may take before it counts as failed (300)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one start in this process (cProfile, on stderr)")
    parser.add_argument("--projections", nargs="*", default=None,
                        help="rebuild only these after seeding (e.g. paper_book, to time a "
                             "resume alone with --profile: /health stays amber meanwhile)")
    args = parser.parse_args()
    url = args.database or f"{BASE_URL}?schema=bench_start_{args.bots}_{args.events}"
    if ensure_schema(url, args.fresh):
        seed(url, args.bots, args.events, args.projections)
    head = head_of(url)
    print(f"log: {head:,} events, {args.bots:,} bots ({url})")
    if args.profile:
        profile_start(url)
    logs = ROOT / "var" / "bench_start"
    logs.mkdir(parents=True, exist_ok=True)
    green = None
    for n in range(1, args.starts + 1):
        first, green, health, parts = time_start(url, args.timeout, logs)
        kind = "the first" if n == 1 else "again"
        each = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in parts.items())
        if green is None:
            late = {name: part.get("status") for name, part in health.items()
                    if isinstance(part, dict) and part.get("status") != "green"}
            print(f"start {n} ({kind}): not green within {args.timeout:g} s (first green: "
                  f"{each or 'none'}; still not green: {json.dumps(late)}); engine loop: "
                  f"{json.dumps(health.get('engine_loop'))[:300]}")
            continue
        print(f"start {n} ({kind}): /health answers in {first:.2f} s, green in {green:.2f} s "
              f"(first green: {each})")
    met = green is not None and green <= GOAL_SECONDS
    print(f"{'MET' if met else 'MISSED'}: /health green within {GOAL_SECONDS:g} s with "
          f"{args.bots:,} bots and {head:,} events"
          f"{'' if green is None else f' ({green:.2f} s)'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
