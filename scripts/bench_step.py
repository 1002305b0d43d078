"""Benchmark: the engine's step alone, per candle, in processor time (a loaded machine's
wall clock is noise).

    .venv/bin/python scripts/bench_step.py --template SCHEMA --candles 200 \\
        [--database postgresql://postgres@127.0.0.1:5432/test] [--profile FILE] [--no-freeze] \\
        [--digest]

``SCHEMA``: a PostgreSQL schema of running paper bots seeded as ``bench_live.py`` seeds
them (its ``seed``; 10 bots a user). It is copied to a scratch schema (dropped afterwards),
so every run starts from the same log (``SCHEMA_step_...``). An engine worker is opened on
the copy as ``serve --role engine`` opens it (its appends fenced by the leases it takes at its first
tick), then the runner's ``on_candle`` is fed the shipped month's 1-minute candles one after
another, as the live loop feeds it. Per candle: processor time of the step (this thread),
events appended, transactions, aggregate loads. Candles are grouped by what they wrote:
the first (every bot opens its first deal), heavy (>= 1,000 events) and steady (the others);
and the quiet candles right after a writing one (its markets' bands measured again); of
each group's processor time, how much was the append (encoding, seals, the INSERT) and
the garbage collector; each heavy candle with its range and the events it wrote, by kind;
how the deals' closes spread over the candles.
``--profile FILE``: cProfile of every candle after the first, written to FILE.
The steps' survivors are frozen as a server's live loop freezes them
(``application/paper_heap.py``); ``--no-freeze`` leaves them to the collector. After the
candles, what a full pass of the collector costs, and after each step the collector's pass
its first allocations trigger (the live loop's gap), measured apart.
``--digest``: the engine's ids drawn from ``SequentialIds`` (seeded) instead of at random,
and after the candles a SHA-256 of what they appended (each event's id, version, topic and
stored state, in log order): two runs of the same code give the same digest, so a change
meant to leave every event as it was is checked by comparing it before and after.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
HEAVY = 1000  # events a step writes to count as heavy


def copy_schema(base: str, template: str, schema: str) -> None:
    """``template`` dumped and restored as ``schema`` (psql/pg_dump of the server's host)."""
    host = base.split("//", 1)[1].split("/", 1)
    user, hostport = host[0].split("@")
    db = host[1]
    args = ["-h", hostport.split(":")[0], "-p", [*hostport.split(":"), "5432"][1], "-U", user, db]
    for _attempt in range(5):  # (fails when another session drops a schema meanwhile)
        done = subprocess.run(
            ["pg_dump", "-n", template, *args], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            break
        print(f"  pg_dump: {done.stderr.strip()[:200]}", file=sys.stderr)
        time.sleep(1)
    dump = done.stdout
    renamed = (
        dump.replace(f"{template}.", f"{schema}.")
        .replace(f"SCHEMA {template}", f"SCHEMA {schema}")
        .replace(f"'{template}'", f"'{schema}'")
    )
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", *args],
        input=renamed,
        text=True,
        check=True,
        capture_output=True,
    )


def copy_keys(base: str, template: str, schema: str) -> None:
    """The template's master and audit key files (``TRADETAPE_KEY_DIR``), for the copy."""
    import shutil

    folder = Path(os.environ.get("TRADETAPE_KEY_DIR", ROOT / "var" / "keys"))
    for path in folder.glob(f"*-{template}.*-key"):
        shutil.copy(path, folder / path.name.replace(f"-{template}.", f"-{schema}."))


def drop_keys(schema: str) -> None:
    """The copy's key files (``copy_keys``): each run left three behind in the key folder."""
    folder = Path(os.environ.get("TRADETAPE_KEY_DIR", ROOT / "var" / "keys"))
    for path in folder.glob(f"*-{schema}.*-key"):
        path.unlink(missing_ok=True)


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    for _attempt in range(30):  # (a shared server may be out of connections a while)
        try:
            with psycopg.connect(
                **_connect_kwargs(parse_database_url(base).env), autocommit=True
            ) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        except psycopg.OperationalError:
            time.sleep(2)


@contextmanager
def copied(database: str, template: str, kind: str) -> Iterator[str]:
    """The URL of a scratch copy of ``template`` (schema and key files), dropped after."""
    base = database.split("?", maxsplit=1)[0]
    # named after the template: a shared server's schemas say whose they are
    schema = f"{template}_{kind}_{uuid.uuid4().hex[:10]}"
    copy_schema(base, template, schema)
    copy_keys(base, template, schema)
    try:
        yield f"{base}?schema={schema}"
    finally:
        drop_schema(base, schema)
        drop_keys(schema)


class GcTime:
    """Processor time spent in the garbage collector (its callbacks), by generation."""

    def __init__(self):
        import gc

        self.cpu = [0.0, 0.0, 0.0]
        self._began = 0.0

        def heard(phase, info):
            if phase == "start":
                self._began = time.thread_time()
            else:
                self.cpu[info["generation"]] += time.thread_time() - self._began

        gc.callbacks.append(heard)


class Counts:
    """Transactions (appends) and aggregate loads of a Trading, counted by wrapping it."""

    def __init__(self, trading):
        self.appends = self.loads = 0
        self.append_cpu = 0.0  # processor time inside the appends (this thread)
        self.kinds: dict[str, int] = {}  # events appended, by kind (e.g. Deal.Opened)
        self.batches: list = []  # the step's appends, not counted yet
        real_append, real_load, real_many = (
            trading.append_positions,
            trading.load,
            trading.load_many,
        )

        def append_positions(events):
            self.appends += 1
            self.batches.append(events)  # (counted by kind after the step: ``count_kinds``)
            cpu = time.thread_time()
            try:
                return real_append(events)
            finally:
                self.append_cpu += time.thread_time() - cpu

        def load(*args, **kwargs):
            self.loads += 1
            return real_load(*args, **kwargs)

        def load_many(ids, kind):
            self.loads += 1
            return real_many(ids, kind)

        trading.append_positions, trading.load, trading.load_many = (
            append_positions,
            load,
            load_many,
        )

    def count_kinds(self) -> None:
        """The step's events by kind, counted outside its processor time (~0.3 µs an
        event were counted in the step's before: part of what it measured was this)."""
        kinds = self.kinds
        for events in self.batches:
            for event in events:
                kind = type(event).__qualname__
                kinds[kind] = kinds.get(kind, 0) + 1
        self.batches = []


def gap_collector(gc_time: GcTime) -> float:
    """The loop's gap after a step: processor time of the collector's pass its first
    allocations trigger (over what the step left young, unless frozen)."""
    before = sum(gc_time.cpu)
    gap = [[n] for n in range(1000)]
    del gap
    return sum(gc_time.cpu) - before


def full_pass() -> str:
    """What one full pass of the collector costs now, with the engines' state as the candles
    left it: the live loop runs with the collector on between steps, and such a pass lands
    in whichever step (or gap) the allocations happen to trigger it."""
    import gc

    tracked = sum(gc.get_count())
    frozen = gc.get_freeze_count()
    cpu = time.thread_time()
    found = gc.collect()
    return (f"a full collection now: {(time.thread_time() - cpu) * 1000:.1f} ms processor "
            f"time, {found} unreachable, {len(gc.get_objects()):,} objects tracked "
            f"({frozen:,} frozen, {tracked:,} young)")


def log_digest(url: str, after: int) -> tuple[int, str]:
    """How many events the log holds past position ``after``, and a SHA-256 of them in log
    order: each one's id, version, topic and stored state (bytes as stored)."""
    import hashlib

    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    parsed = parse_database_url(url)
    schema = parsed.env["POSTGRES_SCHEMA"]
    digest, count = hashlib.sha256(), 0
    with psycopg.connect(**_connect_kwargs(parsed.env)) as conn, conn.cursor(
            name="digest") as rows:
        rows.execute(f'SELECT originator_id, originator_version, topic, state FROM '
                     f'"{schema}".trading_events WHERE notification_id > %s '
                     f'ORDER BY notification_id', (after,))
        for originator, version, topic, state in rows:
            digest.update(b"%s %d %s %d\n" % (originator.bytes, version, topic.encode(),
                                               len(state)))
            digest.update(state)
            count += 1
    return count, digest.hexdigest()


def open_worker(url: str, freeze: bool, digest: bool):
    """An engine worker on ``url`` as ``serve --role engine`` opens it, every bot leased."""
    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ({**os.environ, "TRADETAPE_DATABASE_URL": url})
    runtime = open_runtime(settings, role="engine")
    paper, leases = runtime.paper, runtime.leases
    if digest:  # the same ids at every run: the log's digest says whether events changed
        from adapters.clock import SequentialIds

        paper.ids = runtime.trading.ids = SequentialIds("bench_step")
    leases.seconds = 3600.0  # no renewal needed while we measure
    leases.store.join(leases.seconds)
    leases.tick()  # the worker's first share: every bot
    followed, held = len(paper.bot_ids), len(leases.held)
    print(f"  following {followed} bots", file=sys.stderr, flush=True)
    if followed < held:  # e.g. the shared server was out of connections: not comparable
        raise SystemExit(f"only {followed} of the {held} bots leased could be followed")
    if freeze:  # as the live loop of a server does (application/paper_heap.py)
        from application.paper_heap import StepSurvivors

        paper.survivors = StepSurvivors()
    return runtime


def run(url: str, candles: int, profile: str | None, freeze: bool = True,
        digest: bool = False) -> list[dict]:
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series
    from application.bootstrap import SHIPPED_FIRST

    runtime = open_worker(url, freeze, digest)
    paper, leases = runtime.paper, runtime.leases
    counts = Counts(runtime.trading)
    head = runtime.trading.recorder.max_notification_id() or 0
    gc_time = GcTime()
    series = load_candles(shipped_series(SHIPPED_FIRST))
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    profiler = None
    for i in range(min(candles, len(series))):
        o, h, low, c = series.exact(i)
        ts_ms = int(series.timestamps[i])
        at = epoch + timedelta(minutes=i + 1)
        if i == 1 and profile:  # (the first candle, every bot opening a deal, apart)
            import cProfile

            profiler = cProfile.Profile(time.thread_time)  # processor time, not wall
            profiler.enable()
        appends, loads, append_cpu = counts.appends, counts.loads, counts.append_cpu
        collected = sum(gc_time.cpu)
        counts.kinds = {}
        cpu, wall = time.thread_time(), time.perf_counter()
        events = paper.on_candle("BTC/USDT", ts_ms, o, h, low, c, at)
        stepped = time.thread_time()  # (floats: no allocation the collector counts)
        walled = time.perf_counter()
        gap_gc = gap_collector(gc_time)
        counts.count_kinds()
        rows.append(
            {
                "cpu": stepped - cpu,
                "gap_gc": gap_gc,
                "wall": walled - wall,
                "events": events,
                "appends": counts.appends - appends,
                "loads": counts.loads - loads,
                "append_cpu": counts.append_cpu - append_cpu,
                "gc_cpu": sum(gc_time.cpu) - collected - gap_gc,
                "candle": i,
                "range": (low, h),
                "kinds": counts.kinds,
            }
        )
        if i % 20 == 0:
            print(
                f"  candle {i}: {events} events, cpu {rows[-1]['cpu'] * 1000:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
    print(f"  garbage collector, processor s by generation: "
          f"{', '.join(f'{t:.2f}' for t in gc_time.cpu)}", file=sys.stderr)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    print(f"  {full_pass()}", file=sys.stderr)
    leases.store.leave()
    runtime.stop()
    if digest:
        count, sha = log_digest(url, head)
        print(f"log digest: {count} events appended, sha256 {sha}")
    return rows


def summary(name: str, rows: list[dict]) -> str:
    if not rows:
        return f"{name}: none"
    cpu = [r["cpu"] * 1000 for r in rows]
    wall = [r["wall"] * 1000 for r in rows]
    events = max(1, sum(r["events"] for r in rows))
    return (
        f"{name}: {len(rows)} candles, CPU ms p50 {statistics.median(cpu):.2f} "
        f"mean {statistics.fmean(cpu):.2f} max {max(cpu):.1f}, wall ms p50 "
        f"{statistics.median(wall):.1f} mean {statistics.fmean(wall):.1f}, events "
        f"{sum(r['events'] for r in rows)}, CPU us/event "
        f"{sum(cpu) * 1000 / max(1, sum(r['events'] for r in rows)):.1f}, transactions "
        f"{sum(r['appends'] for r in rows)}, loads {sum(r['loads'] for r in rows)}, "
        f"of which the append {sum(r['append_cpu'] for r in rows) * 1e6 / events:.1f} "
        f"us/event, the garbage collector {sum(r['gc_cpu'] for r in rows) * 1e6 / events:.1f}"
        f"; after the steps, the collector {sum(r['gap_gc'] for r in rows) * 1000:.1f} ms "
        f"(max {max(r['gap_gc'] for r in rows) * 1000:.1f})"
    )


def heavy_detail(rows: list[dict]) -> list[str]:
    """Each heavy candle: its index in the month, range, events and what they were."""
    lines = []
    for r in rows:
        low, high = r["range"]
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(r["kinds"].items(), key=lambda kv: -kv[1]))
        lines.append(f"  candle {r['candle']} ({low}-{high}): {r['events']} events, CPU "
                     f"{r['cpu'] * 1000:.0f} ms: {kinds}")
    return lines


def closes(rows: list[dict]) -> str:
    """How the deals' closes spread over the candles: the busiest candle's share is what
    one step must carry (a cohort of deals closing and opening again at once)."""
    per = sorted((r["kinds"].get("Deal.Closed", 0) for r in rows), reverse=True)
    total = sum(per)
    if not total:
        return "deals closed: none"
    acting = sum(1 for n in per if n)
    following = ", ".join(str(n) for n in per[1:5] if n) or "none"
    return (f"deals closed: {total} on {acting} candles, the busiest {per[0]} "
            f"({100 * per[0] / total:.0f}%), the next {following}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", required=True, help="a seeded schema to copy")
    parser.add_argument("--candles", type=int, default=200)
    parser.add_argument("--database", default=DEFAULT_URL)
    parser.add_argument("--profile", help="cProfile output of the candles after the first")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the steps' survivors to the collector (as before)")
    parser.add_argument("--digest", action="store_true",
                        help="seeded ids, and a digest of the events the candles appended")
    args = parser.parse_args()
    with copied(args.database, args.template, "step") as url:
        rows = run(url, args.candles, args.profile, not args.no_freeze, args.digest)
    print(summary("first", rows[:1]))
    rest = rows[1:]
    print(summary("heavy", [r for r in rest if r["events"] >= HEAVY]))
    print("\n".join(heavy_detail([r for r in rest if r["events"] >= HEAVY])))
    print(summary("steady", [r for r in rest if r["events"] < HEAVY]))
    print(summary("steady, writing", [r for r in rest if 0 < r["events"] < HEAVY]))
    print(summary("steady, nothing", [r for r in rest if r["events"] == 0]))
    # the bands of the markets a writing candle touched are measured again at the next
    after_writing = [r for prev, r in itertools.pairwise(rest)
                     if prev["events"] and not r["events"]]
    print(summary("steady, nothing, after one writing", after_writing))
    print(closes(rest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
