"""Benchmark: how fast the projections' follower (``serve --role projections``) applies a
wave of live-shaped events (a take-profit wave: fills, deal closes, deal opens), replayed.

    .venv/bin/python scripts/bench_wave.py prep --schema S [--bots 10000] [--candles 100]
    .venv/bin/python scripts/bench_wave.py run --schema S [--repeat 2] [--profile]

``prep`` (once): seeds ``S`` as ``bench_live.py`` seeds it (N running paper bots, 10 a user,
the read models rebuilt), trades them on the shipped month's first ``--candles`` 1-minute
candles as ``bench_step.py`` does (an engine worker's ``on_candle``), noting the log's head
after each candle; then brings the read models up to the head before the largest wave
(heavy candles, >= 10,000 events, in a row: at 10,000 bots candles 198-199, ~58,600
events of fills, deal closes and opens) and keeps a copy of every view table there
(``wave__<table>``).

``run``: puts the views back to that copy, then, in a fresh process, opens the projections as
``serve --role projections`` opens them (``SupervisedProjections``, every projection) and
times one ``catch_up`` of what follows: the wave and the candles after it. Prints events,
wall seconds, the process's processor seconds (every thread: reader, applier, writer) and
PostgreSQL's (its backends' processor time is not counted: wall and the applying thread's
time say where the rest went), events/s. ``--profile``: the batches projection by
projection, timed (``Projector.timed``: slower, only for the split). ``--whole-writes``:
each batch's writes sent as the follower sends them (the per-table figures write each table
on its own, outside the pipelines: more round trips).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

DEFAULT_BASE = "postgresql://postgres@127.0.0.1:5432/test"
SNAP = "wave__"


def marks_path(schema: str) -> Path:
    return ROOT / "var" / f"bench_wave_{schema}.json"


def env() -> None:
    from bench_live import ENV

    for key, value in ENV.items():
        os.environ.setdefault(key, value)


def view_tables(store) -> list[str]:
    from projections.registry import PROJECTIONS
    from projections.store import TRACKING

    return [TRACKING, *(t.name for cls in PROJECTIONS.values() for t in cls.tables)]


def prep(args) -> None:
    from bench_live import seed
    from bench_step import run as trade
    from clone_seed import ensure_schema

    env()
    url = f"{args.base}?schema={args.schema}"
    ensure_schema(url, True)
    seconds = seed(url, args.bots, 10, True)
    print(f"seeded {args.bots} bots in {seconds:.1f} s", file=sys.stderr)
    from application.bootstrap import open_trading

    trading = open_trading(url)
    heads = [trading.recorder.max_notification_id() or 0]
    rows = trade(url, args.candles, None)
    head = trading.recorder.max_notification_id() or 0
    position = heads[0]
    marks = []
    for r in rows:
        position += r["events"]
        marks.append({"candle": r["candle"], "events": r["events"], "head": position})
    if position != head:
        print(f"note: head {head}, counted {position}", file=sys.stderr)
    warm, start = wave_start(marks)
    trading.close()
    marks_path(args.schema).parent.mkdir(exist_ok=True)
    marks_path(args.schema).write_text(json.dumps(
        {"warm": warm, "start": start, "head": head, "marks": marks}))
    snapshot(url, warm)


def wave_start(marks: list[dict]) -> tuple[int, int]:
    """The log's head two candles before the largest wave (heavy candles, >= 10,000 events,
    in a row, after the first close), where the copy is taken: ``once`` applies those two
    as a warm-up (a follower that ran before the wave), and the head just before it."""
    best, best_events, i = 1, 0, 1
    while i < len(marks):
        j = i
        while j < len(marks) and marks[j]["events"] >= 10_000:
            j += 1
        events = sum(m["events"] for m in marks[i:j])
        if events > best_events:
            best, best_events = i, events
        i = j + 1
    print(f"wave from candle {marks[best]['candle']}: {best_events} events",
          file=sys.stderr)
    return marks[max(1, best - 3)]["head"], marks[best - 1]["head"]


def snapshot(url: str, start: int) -> None:
    """The read models brought up to ``start`` and copied (``wave__<table>``)."""
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.registry import PROJECTIONS
    from projections.runner import Projector
    from projections.store import PostgresViewStore

    trading = open_trading(url)
    store = PostgresViewStore(parse_database_url(url).env)
    projector = Projector(trading, store, [cls() for cls in PROJECTIONS.values()],
                          max_batch=20_000)
    projector.catch_up(until=start)
    with store.transaction() as cur:
        for table in view_tables(store):
            cur.execute(f"DROP TABLE IF EXISTS {store.q(SNAP + table)}")
            cur.execute(f"CREATE TABLE {store.q(SNAP + table)} AS SELECT * FROM "
                        f"{store.q(table)}")
    store.close()
    trading.close()


def resnap(args) -> None:
    """The copy made again at the largest wave of the marks ``prep`` kept."""
    env()
    url = f"{args.base}?schema={args.schema}"
    restore(url)
    marks = json.loads(marks_path(args.schema).read_text())
    marks["warm"], marks["start"] = wave_start(marks["marks"])
    marks_path(args.schema).write_text(json.dumps(marks))
    snapshot(url, marks["warm"])


def restore(url: str) -> None:
    from application.settings import parse_database_url
    from projections.store import PostgresViewStore

    store = PostgresViewStore(parse_database_url(url).env)
    with store.transaction() as cur:
        for table in view_tables(store):
            cur.execute(f"TRUNCATE {store.q(table)}")
            cur.execute(f"INSERT INTO {store.q(table)} SELECT * FROM {store.q(SNAP + table)}")
    with store.transaction() as cur:
        for table in view_tables(store):
            cur.execute(f"ANALYZE {store.q(table)}")
    store.close()


def backend_cpu(conn) -> float:
    """Processor seconds of the PostgreSQL backend serving ``conn`` (``/proc``: the server
    runs on this machine)."""
    try:
        stat = Path(f"/proc/{conn.info.backend_pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timeline:
    """When each page was read, applied and committed (relative to ``t0``), and the
    processor time of each part: the reads' and commits' own threads, the collector's, and
    the PostgreSQL backends' (each table's writes, unless ``by_table`` is False: timing
    them writes each table on its own, out of the pipelines ``PostgresViewStore.write``
    sends them in; every store's as it closes)."""

    def __init__(self, by_table: bool = True):
        import threading

        self.t0 = time.perf_counter()
        self.gc = [0.0, 0.0, 0.0]  # processor s in the collector, by generation
        self.spans: list[tuple[str, float, float, int]] = []  # (what, start, end, events)
        self.cpu: dict[str, float] = {}
        self.tables: dict[str, list[float]] = {}  # table: [rows, wall s, backend cpu s]
        self.backends = 0.0
        self.lock = threading.Lock()
        self._collector()
        self._pages()
        self._writes(by_table)

    def add(self, what: str, began: float, events: int, cpu: float) -> None:
        with self.lock:
            self.spans.append((what, began - self.t0, time.perf_counter() - self.t0, events))
            self.cpu[what] = self.cpu.get(what, 0.0) + time.thread_time() - cpu

    def _collector(self) -> None:
        import gc

        began = [0.0]

        def heard(phase, info):
            if phase == "start":
                began[0] = time.thread_time()
            else:
                self.gc[info["generation"]] += time.thread_time() - began[0]

        gc.callbacks.append(heard)

    def _pages(self) -> None:
        from projections.reader import LogReader
        from projections.runner import Projector

        page, apply_page, add = LogReader.page, Projector._apply_page, self.add

        def timed_page(self, after, limit, stop=None):
            began, cpu = time.perf_counter(), time.thread_time()
            rows = page(self, after, limit, stop)
            add("read", began, len(rows), cpu)
            return rows

        def timed_apply(self, rows):
            began, cpu = time.perf_counter(), time.thread_time()
            job = apply_page(self, rows)
            add("apply", began, len(rows), cpu)

            def timed_job(store):
                began, cpu = time.perf_counter(), time.thread_time()
                job(store)
                add("commit", began, len(rows), cpu)

            return timed_job

        LogReader.page, Projector._apply_page = timed_page, timed_apply

    def _writes(self, by_table: bool) -> None:
        from projections.store import PostgresViewStore

        close, write, timeline = PostgresViewStore.close, PostgresViewStore.write, self

        def counted_close(self):
            timeline.backends += backend_cpu(self.conn)
            close(self)

        def timed_write(self, cur, changes, suffix=""):
            for change in changes:
                began, cpu = time.perf_counter(), backend_cpu(self.conn)
                write(self, cur, [change], suffix)
                kept = timeline.tables.setdefault(change.table.name, [0, 0.0, 0.0])
                kept[0] += (len(change.gone) + len(change.inserts) + len(change.upserts)
                            + len(change.patches))
                kept[1] += time.perf_counter() - began
                kept[2] += backend_cpu(self.conn) - cpu

        PostgresViewStore.close = counted_close
        if by_table:
            PostgresViewStore.write = timed_write

    def report(self) -> dict:
        return {"cpu_s": {k: round(v, 3) for k, v in self.cpu.items()},
                "gc_cpu_s": [round(t, 3) for t in self.gc],
                "tables": {k: [v[0], round(v[1], 3), round(v[2], 2)] for k, v in
                           sorted(self.tables.items(), key=lambda kv: -kv[1][1])},
                "spans": [(w, round(a, 3), round(b, 3), n) for w, a, b, n in self.spans]}


def once(args) -> None:
    """One timed catch-up in this (fresh) process."""
    env()
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.registry import PROJECTIONS
    from projections.store import open_view_store
    from projections.supervisor import SupervisedProjections

    url = f"{args.base}?schema={args.schema}"
    trading = open_trading(url)
    store = open_view_store(parse_database_url(url))
    from application.paper_heap import StepSurvivors

    projections = SupervisedProjections(trading, store, list(PROJECTIONS.values()),
                                        **({"max_batch": args.max_batch}
                                           if args.max_batch else {}),
                                        **({} if args.thawed
                                           else {"survivors": StepSurvivors()}))
    projections.start()
    # a follower that ran before the wave: the candles before it applied (books shared)
    warm = json.loads(marks_path(args.schema).read_text())
    projections._projector.catch_up(until=warm["start"])
    if args.profile:
        projections._projector.timed = True
    before = min(projections.positions().values())
    head = trading.recorder.max_notification_id() or 0
    timeline = Timeline(by_table=not args.whole_writes)
    own = backend_cpu(store.conn)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    thread0 = time.thread_time()
    read = projections.catch_up()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    thread = time.thread_time() - thread0
    pg = timeline.backends + backend_cpu(store.conn) - own
    assert not projections.problems(), projections.problems()
    after = min(projections.positions().values())
    result = {"events": read, "from": before, "to": after, "head": head, "wall_s": wall,
              "process_cpu_s": cpu, "main_thread_cpu_s": thread, "postgres_cpu_s": pg,
              "events_per_wall_s": read / wall}
    result.update(timeline.report())
    import gc

    result["objects"] = len(gc.get_objects()) + gc.get_freeze_count()
    gc.unfreeze()
    cpu0 = time.thread_time()
    gc.collect()
    result["full_pass_cpu_s"] = round(time.thread_time() - cpu0, 3)
    if args.profile:
        result["costs_cpu"] = projections._projector.cpu_costs()
    print(json.dumps(result))
    store.close()
    trading.close()


def run(args) -> None:
    url = f"{args.base}?schema={args.schema}"
    for _ in range(args.repeat):
        restore(url)
        done = subprocess.run([sys.executable, __file__, "once", "--schema", args.schema,
                               "--base", args.base, *(["--profile"] if args.profile else []),
                               *(["--max-batch", str(args.max_batch)] if args.max_batch
                                 else []), *(["--thawed"] if args.thawed else []),
                               *(["--whole-writes"] if args.whole_writes else [])],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(done.returncode)
        print(done.stdout.strip().splitlines()[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("prep", "resnap", "run", "once"))
    parser.add_argument("--schema", required=True)
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--candles", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--max-batch", type=int, help="the follower's (else its default)")
    parser.add_argument("--thawed", action="store_true",
                        help="no StepSurvivors (as before: the collector walks the state)")
    parser.add_argument("--whole-writes", action="store_true",
                        help="each batch's writes as the follower sends them (pipelined), "
                             "not table by table: no per-table figures")
    args = parser.parse_args()
    {"prep": prep, "resnap": resnap, "run": run, "once": once}[args.what](args)


if __name__ == "__main__":
    main()
