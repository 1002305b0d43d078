"""Benchmark: how long ``tradetape serve`` takes from launch to ``/health`` green on a big log.

    .venv/bin/python scripts/bench_start.py --bots 10000 --events 10000000 \
        [--database postgresql://postgres@127.0.0.1:5432/test?schema=bench_start_...] \
        [--fresh] [--starts 2] [--profile] [--spy DIR [--spy-busy]] [--timeout 300]

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
answer of ``/health``, to green, and when each of its parts was first green, and how many
rows of the events table PostgreSQL read from launch to stop (its statistics: the same
whatever the machine's load; a walk of the log shows as millions). The last line says
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
from functools import cache
from pathlib import Path

from clone_seed import BOTS_PER_USER, ensure_schema, log, quiet_candle, seed, template_and_band

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


def log_rows_read(url: str) -> int:
    """Rows of the events table PostgreSQL has read so far, by scans and through indexes
    (its statistics): what a start read of the log, whatever the machine's load. A
    server's sessions flush their counts when they end (``time_start`` stops it first)."""
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM "
            "pg_stat_user_tables WHERE schemaname = %s AND relname = 'trading_events'",
            (env.get("POSTGRES_SCHEMA", "public"),)).fetchone()
    return row[0] if row else 0


# --- timing a start -----------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processor_seconds(pid: int) -> float:
    """User + system time of a process so far (``/proc``): comparable on a shared machine,
    where the wall clock is not."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record(pid: int, out: Path, idle: bool = True) -> subprocess.Popen:
    """py-spy sampling ``pid`` (every thread, idle ones too unless ``idle`` is false: then
    only samples on the processor, the shares of the start's processor time) into ``out``
    (collapsed stacks), until it is sent SIGINT."""
    return subprocess.Popen([str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(pid),
                             "--rate", "50", *(["--idle"] if idle else []), "--threads",
                             "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def quiet_market(bots: int, events: int) -> dict[str, str]:
    """The feed settings under which a start's first candles reach none of the seeded bots'
    levels: the shipped market at one candle a minute, anchored so that the candle the
    first poll delivers begins 30 in a row inside the band the seed's bots rest in (the
    same for every user: each is a copy of one template). Without them a start at the
    server's fixed epoch found the market wherever the clock put it, far from the seeded
    deals: its first candle filled ~23,000 safety orders and /health waited for the read
    models to apply them (a minute of trading, not of starting). Empty when there is no
    such stretch (the server's own market then)."""
    from datetime import UTC, datetime, timedelta

    first = _quiet_candle(bots, events)
    if first is None:
        log("no quiet stretch of the market for this seed: the server's own market")
        return {}
    # the first poll delivers the last candle closed: ``first``, closed 30 s ago
    epoch = datetime.now(UTC) - timedelta(minutes=first + 1.5)
    return {"TRADETAPE_SPEED": "1", "TRADETAPE_FEED_EPOCH": epoch.isoformat()}


@cache
def _quiet_candle(bots: int, events: int) -> int | None:
    users = max(1, bots // BOTS_PER_USER)
    _, _, (below, above) = template_and_band(max(1, events // users))
    return quiet_candle(below, above, run=30) if below is not None else None


def time_start(url: str, timeout: float, logs: Path, spy: Path | None = None,
               market: dict[str, str] | None = None, idle: bool = True
               ) -> tuple[float | None, float | None, dict, dict[str, float]]:
    """(seconds to the first /health answer, seconds to green, the last health seen, seconds
    until each part was first green, and ``cpu``: the server's processor seconds then).
    With ``spy``, the start is sampled by py-spy into that file until green."""
    port = free_port()
    env = {**os.environ, "TRADETAPE_DATABASE_URL": url, "PYTHONUNBUFFERED": "1",
           **(market or {})}
    out = (logs / f"serve-{port}.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen([str(ROOT / ".venv/bin/tradetape"), "serve", "--port",
                                str(port), "--database", url], stdout=out,
                               stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    spying = record(process.pid, spy, idle) if spy is not None else None
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
                parts["cpu"] = processor_seconds(process.pid)
                break
            time.sleep(0.05)
    finally:
        if spying is not None:
            spying.send_signal(signal.SIGINT)
            spying.wait(60)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
    return first, green, health, parts


def profile_start(url: str, market: dict[str, str]) -> None:
    import cProfile
    import pstats

    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ({"TRADETAPE_DATABASE_URL": url, **market})
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
    parser.add_argument("--spy", type=Path, default=None,
                        help="py-spy each start until green (SPY/start-N.txt, raw stacks)")
    parser.add_argument("--spy-busy", action="store_true",
                        help="with --spy, only the samples on the processor (no idle "
                             "threads, no waits on PostgreSQL): where the processor time goes")
    parser.add_argument("--any-market", action="store_true",
                        help="the server's own market (its fixed epoch, 60x) instead of a "
                             "stretch where the seeded bots trade nothing")
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
        profile_start(url, {} if args.any_market else quiet_market(args.bots, args.events))
    logs = ROOT / "var" / "bench_start"
    logs.mkdir(parents=True, exist_ok=True)
    green = None
    for n in range(1, args.starts + 1):
        spy = None
        if args.spy is not None:
            args.spy.mkdir(parents=True, exist_ok=True)
            spy = args.spy / f"start-{n}.txt"
        market = {} if args.any_market else quiet_market(args.bots, args.events)
        read_before = log_rows_read(url)
        first, green, health, parts = time_start(url, args.timeout, logs, spy, market,
                                                 idle=not args.spy_busy)
        time.sleep(1.0)  # the server's last sessions flush their statistics as they end
        rows_read = log_rows_read(url) - read_before
        kind = "the first" if n == 1 else "again"
        cpu = parts.pop("cpu", None)
        each = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in parts.items())
        if green is None:
            late = {name: part.get("status") for name, part in health.items()
                    if isinstance(part, dict) and part.get("status") != "green"}
            print(f"start {n} ({kind}): not green within {args.timeout:g} s (first green: "
                  f"{each or 'none'}; still not green: {json.dumps(late)}); engine loop: "
                  f"{json.dumps(health.get('engine_loop'))[:300]}")
            continue
        print(f"start {n} ({kind}): /health answers in {first:.2f} s, green in {green:.2f} s "
              f"with {cpu:.2f} s of the server's processor time (first green: {each}); "
              f"{rows_read:,} rows of the log read by PostgreSQL from launch to stop")
    met = green is not None and green <= GOAL_SECONDS
    print(f"{'MET' if met else 'MISSED'}: /health green within {GOAL_SECONDS:g} s with "
          f"{args.bots:,} bots and {head:,} events"
          f"{'' if green is None else f' ({green:.2f} s)'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
