"""Benchmark: N running paper bots on the server's live loop, as an operator runs them.

    .venv/bin/python scripts/bench_live.py --bots N[,N...] --speed S --seconds T \\
        [--database postgresql://postgres@127.0.0.1:5432/test] [--no-sqlite]

For each N, on PostgreSQL (the URL's database, in a schema of its own, dropped afterwards)
and on SQLite beside it (a temporary file), in a fresh child process each:

1. **Seed through the application**: N/10 verified users registered (10 bots each, on
   their paper account), each bot created (enrolled in its owner's roster) and started
   through the trading application's commands, with configurations that differ (take
   profit, ladder step and depth, base order, stop loss, trailing) so that after their
   first deal they do not all act on the same candle.
2. **Start** the server's runtime on that database (``open_runtime`` + ``start``: every
   bot resumed from its events, read models caught up): the start time.
3. **Run** the replayed market at S candles per second (``TRADETAPE_SPEED`` = 60 x S) for
   a warm-up (the first close, where every bot opens its first deal, and 5 s after it;
   printed apart) and then T seconds, measured:
   - candles/s kept (delivered / T) against S;
   - step time p50/p99 (a step: every candle that closed since the last one);
   - lag p50/p99: from a candle's close (the server's clock) to the end of its step;
   - events/s appended by the engine;
   - projection lag (events the read models are behind the log, sampled every 0.5 s:
     p50 and max), read models following on their own thread;
   - CPU (the process, the engine's thread and the projections' thread, % of one core)
     and RSS at the end.

The last line says ``MET`` when every N kept up on PostgreSQL at S (at least 95% of the
candles delivered, p99 lag under 2 s), else ``MISSED``. Goal (issue 15, a quiet 2-core
machine): 10,000 bots at 1 candle/s and 1,000 bots at 10 candles/s. Progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
PER_USER = 10
PASSWORD = "Bench-live-password-1"
MAX_LAG_S = 2.0
KEPT = 0.95  # of the candles due, delivered


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def config_of(k: int):
    """The k-th bot's configuration: a small DCA, every few bots a little different."""
    from domain.dca import DcaConfig

    data = {"pair": "BTC/USDT", "base_order_quote": str(20 + k % 7 * 5),
            "safety_order_quote": str(10 + k % 5 * 5), "max_safety_orders": 1 + k % 4,
            "price_deviation_pct": str(Decimal("0.2") + Decimal(k % 9) / 10),
            "safety_volume_scale": "1.5", "safety_step_scale": "1.2",
            "take_profit_pct": str(Decimal("0.2") + Decimal(k % 11) / 10)}
    if k % 3 == 1:
        data["stop_loss_pct"] = str(2 + k % 4)
    if k % 10 == 7:
        data["trailing_take_profit_pct"] = "0.1"
    return DcaConfig.from_mapping(data)


# --- the child: one database, one N -------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed(settings, bots: int) -> float:
    """Users through identity (registration: a verified user with a funded paper account),
    bots through the trading application's commands (create: enrolled in the owner's
    roster, its limit checked; start)."""
    from application.bootstrap import open_runtime

    started = time.perf_counter()
    runtime = open_runtime(settings)
    trading = runtime.trading
    for u in range((bots + PER_USER - 1) // PER_USER):
        user_id = runtime.identity.register(f"bench-live-{u}@example.com", PASSWORD,
                                            verified=True, actor="system")
        owner, account = str(user_id), str(runtime.identity.get_user(user_id).paper_account_id)
        for j in range(min(PER_USER, bots - u * PER_USER)):
            k = u * PER_USER + j
            bot_id = trading.create_bot(owner_id=owner, name=f"bench {k}", config=config_of(k),
                                        exchange_account_id=account, max_bots=PER_USER)
            trading.start_bot(bot_id, actor=owner)
        if u % 100 == 99:
            say(f"  seeded {(u + 1) * PER_USER} bots")
    runtime.stop()
    return time.perf_counter() - started


class Threads:
    """CPU seconds of this process and of named threads, from /proc."""

    TICK = os.sysconf("SC_CLK_TCK")

    @classmethod
    def cpu(cls, tid: int | None = None) -> float:
        path = f"/proc/self/task/{tid}/stat" if tid else "/proc/self/stat"
        try:
            fields = Path(path).read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / cls.TICK  # utime + stime

    @staticmethod
    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def child(url: str, bots: int, speed: float, seconds: float) -> dict:
    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ({**os.environ, "TRADETAPE_DATABASE_URL": url,
                                            "TRADETAPE_SPEED": str(60 * speed)})
    say(f"{url.split('?', maxsplit=1)[0][:30]}: seeding {bots} bots")
    seeded = seed(settings, bots)
    say(f"  seeded in {seeded:.1f} s; starting")
    started = time.perf_counter()
    runtime = open_runtime(settings)
    loop, worker, feed = runtime.loop, runtime.projection_worker, runtime.loop.feeds[0]
    steps: list[tuple[float, float, list[float], int]] = []  # (end, seconds, lags, candles)
    poll_started = [0.0]
    real_poll, real_wake = feed.poll, worker.wake

    def poll(now, *args, **kwargs):
        poll_started[0] = time.monotonic()
        return real_poll(now, *args, **kwargs)

    def wake(events: int = 0) -> None:  # the loop's after_step: the step just ended
        end = time.monotonic()
        wall = runtime.clock.now()
        lags = [(wall - closed).total_seconds() for _, closed in feed.spans]
        steps.append((end, end - poll_started[0], lags, len(feed.spans)))
        real_wake(events)

    feed.poll, worker.wake = poll, wake
    runtime.start()
    start_s = time.perf_counter() - started
    say(f"  started in {start_s:.1f} s; warming up")
    while not steps and loop.running:
        time.sleep(0.05)
    first = steps[0] if steps else (0, 0, [], 0)
    time.sleep(5)
    samples: list[int] = []
    t0, appended0 = time.monotonic(), runtime.paper.appended
    tids = {"engine": loop._thread.native_id, "projections": worker._thread.native_id}
    cpu0 = {name: Threads.cpu(tid) for name, tid in tids.items()}
    cpu0["process"] = Threads.cpu()
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        samples.append(worker.lag())
    t1 = time.monotonic()
    cpu = {name: (Threads.cpu(tid) - cpu0[name]) / (t1 - t0) * 100
           for name, tid in tids.items()}
    cpu["process"] = (Threads.cpu() - cpu0["process"]) / (t1 - t0) * 100
    appended = runtime.paper.appended - appended0
    window = [s for s in steps if t0 <= s[0] <= t1]
    rss = Threads.rss_mb()
    runtime.stop()
    lags = [lag for s in window for lag in s[2]]
    return {"bots": bots, "speed": speed, "seconds": round(t1 - t0, 1),
            "seed_s": round(seeded, 1), "start_s": round(start_s, 2),
            "first_step_s": round(first[1], 2),
            "candles_per_s": round(sum(s[3] for s in window) / (t1 - t0), 2),
            "step_p50_ms": _ms(percentile([s[1] for s in window], 50)),
            "step_p99_ms": _ms(percentile([s[1] for s in window], 99)),
            "lag_p50_s": _s(percentile(lags, 50)), "lag_p99_s": _s(percentile(lags, 99)),
            "events_per_s": round(appended / (t1 - t0), 1),
            "projection_lag_p50": percentile(samples, 50),
            "projection_lag_max": max(samples, default=None),
            "cpu_process_pct": round(cpu["process"]), "cpu_engine_pct": round(cpu["engine"]),
            "cpu_projections_pct": round(cpu["projections"]), "rss_mb": round(rss)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _s(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


# --- the parent ----------------------------------------------------------------------------


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    with psycopg.connect(**_connect_kwargs(parse_database_url(url).env),
                         autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_child(url: str, bots: int, speed: float, seconds: float, keys: str) -> dict:
    env = {**os.environ, "TRADETAPE_BCRYPT_ROUNDS": "4", "TRADETAPE_KEY_DIR": keys,
           "TRADETAPE_MAX_BOTS_PER_USER": str(PER_USER),
           "TRADETAPE_STARTING_BALANCE": "100000",
           "TRADETAPE_SECRET_KEY": "bench-live-secret-key-0123456789abcdefghij"}
    out = subprocess.run([sys.executable, __file__, "--child", "--bots", str(bots),
                          "--speed", str(speed), "--seconds", str(seconds), "--database", url],
                         env=env, stdout=subprocess.PIPE, text=True, check=False)
    if out.returncode != 0:
        return {"bots": bots, "error": f"the run failed (exit {out.returncode})"}
    return json.loads(out.stdout.strip().splitlines()[-1])


COLUMNS = [("bots", "bots"), ("candles_per_s", "candles/s"), ("step_p50_ms", "step p50 ms"),
           ("step_p99_ms", "step p99 ms"), ("lag_p50_s", "lag p50 s"), ("lag_p99_s", "lag p99 s"),
           ("events_per_s", "events/s"), ("projection_lag_p50", "proj lag p50"),
           ("projection_lag_max", "proj lag max"), ("cpu_process_pct", "CPU %"),
           ("cpu_engine_pct", "engine %"), ("cpu_projections_pct", "proj %"),
           ("rss_mb", "RSS MB"), ("start_s", "start s"), ("first_step_s", "1st step s"),
           ("seed_s", "seed s")]


def kept_up(row: dict, speed: float) -> bool:
    return ("error" not in row and row["candles_per_s"] >= KEPT * speed
            and row["lag_p99_s"] is not None and row["lag_p99_s"] < MAX_LAG_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", default="1000", help="N, or several: 300,1000")
    parser.add_argument("--speed", type=float, default=1.0, help="candles per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per run")
    parser.add_argument("--database", default=DEFAULT_URL, help="a PostgreSQL URL")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.database, int(args.bots), args.speed, args.seconds)))
        return 0
    sizes = [int(n) for n in args.bots.split(",")]
    rows: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        for n in sizes:
            schema = f"bench_live_{uuid.uuid4().hex[:10]}"
            base = args.database.split("?")[0]
            try:
                rows.append(("postgresql", run_child(f"{base}?schema={schema}", n, args.speed,
                                                     args.seconds, tmp)))
            finally:
                drop_schema(base, schema)
            if not args.no_sqlite:
                rows.append(("sqlite", run_child(f"sqlite:///{tmp}/bench-{n}.sqlite", n,
                                                 args.speed, args.seconds, tmp)))
    print(f"bench_live: {args.speed:g} candles/s, {args.seconds:g} s measured per run "
          f"(after the first close and 5 s)")
    print(" | ".join(["store", *(title for _, title in COLUMNS), "keeps up"]))
    for store, row in rows:
        if "error" in row:
            print(f"{store} | {row['bots']} | {row['error']}")
            continue
        print(" | ".join([store, *(str(row.get(key)) for key, _ in COLUMNS),
                          "yes" if kept_up(row, args.speed) else "no"]))
    postgres = [row for store, row in rows if store == "postgresql"]
    met = bool(postgres) and all(kept_up(row, args.speed) for row in postgres)
    print(f"{'MET' if met else 'MISSED'}: {','.join(map(str, sizes))} bots at "
          f"{args.speed:g} candles/s on PostgreSQL, p99 lag < {MAX_LAG_S:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
