"""Where a rebuild's wall time goes beyond its main thread's processor time: the rebuild of
all projections run in this process, the main thread's clock split by ``schedstat``
(on a processor / waiting for one / asleep) around each step (applying a page, the
writer's full queue, the read-ahead, the indexes, the audit chain's check, the shadows),
and the writer's commits split the same way for the writer thread and its PostgreSQL
backend (what is left: waiting for the GIL, the network, locks).

    .venv/bin/python scripts/bench_rebuild_split.py --waits \
        --database postgresql://postgres@127.0.0.1:5432/test?schema=bench_projections

The log must exist (``bench_projections.py --database URL --no-breakdown`` makes it).
Linux only (``/proc/<pid>/task/<tid>/schedstat``); PostgreSQL on this machine (its
backends' ``schedstat`` are read by their pid). Run old and new code alternately: on a
shared machine the time waiting for a processor moves with the load, the sleeps less.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def schedstat(path: str) -> tuple[float, float]:
    """(seconds on a processor, seconds waiting for one) of a thread or process."""
    with open(path) as f:
        on, waiting, _ = f.read().split()
    return int(on) / 1e9, int(waiting) / 1e9


class Steps:
    """Clock, on-processor and waiting-for-one seconds of the main thread, by step."""

    def __init__(self) -> None:
        self.main = threading.get_native_id()
        self.path = f"/proc/self/task/{self.main}/schedstat"
        self.seconds: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_native_id() != self.main:
                return fn(*args, **kwargs)
            clock, (on, waiting) = time.perf_counter(), schedstat(self.path)
            try:
                return fn(*args, **kwargs)
            finally:
                on2, waiting2 = schedstat(self.path)
                entry = self.seconds[name]
                entry[0] += time.perf_counter() - clock
                entry[1] += on2 - on
                entry[2] += waiting2 - waiting
        return timed


class Commits:
    """The writer's ``store.write`` calls: clock, the calling thread's and its backend's
    processor and waiting-for-one seconds."""

    def __init__(self) -> None:
        self.seconds = [0.0] * 5

    def wrap(self, write: Callable[..., None]) -> Callable[..., None]:
        def timed(store: Any, cur: Any, changes: Any, suffix: str = "") -> None:
            me = f"/proc/self/task/{threading.get_native_id()}/schedstat"
            backend = f"/proc/{cur.connection.info.backend_pid}/schedstat"
            clock, mine, its = time.perf_counter(), schedstat(me), schedstat(backend)
            write(store, cur, changes, suffix)
            mine2, its2 = schedstat(me), schedstat(backend)
            for i, value in enumerate((time.perf_counter() - clock, mine2[0] - mine[0],
                                       mine2[1] - mine[1], its2[0] - its[0],
                                       its2[1] - its[1])):
                self.seconds[i] += value
        return timed


def run(url: str, batch_size: int) -> None:
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections import rebuild as rebuilding
    from projections import runner, sql_rebuild, writer
    from projections.registry import PROJECTIONS
    from projections.store import PostgresViewStore, open_view_store

    steps, commits = Steps(), Commits()
    for owner, attribute, name in (
            (runner.Projector, "_apply_page", "applying pages"),
            (runner.Projector, "finish_shadow", "indexes at the end"),
            (runner.Projector, "create_shadow", "making the shadows"),
            (writer.ThreadedWriter, "submit", "the writer's queue full"),
            (writer.ThreadedWriter, "drain", "the writer's last commits"),
            (sql_rebuild.SqlRebuild, "finish", "waiting for the SQL rebuild"),
            (rebuilding, "_bless_chain", "the audit chain's check")):
        setattr(owner, attribute, steps.wrap(name, getattr(owner, attribute)))
    PostgresViewStore.write = commits.wrap(PostgresViewStore.write)
    app = open_trading(url)
    store = open_view_store(parse_database_url(url))
    try:
        load, clock = os.getloadavg()[0], time.perf_counter()
        on, waiting = schedstat(steps.path)
        processor = time.process_time()
        rebuilding.rebuild(app, store, list(PROJECTIONS.values()), batch_size=batch_size,
                           workers=1, database_url=url)
        wall = time.perf_counter() - clock
        on2, waiting2 = schedstat(steps.path)
        print(f"rebuild of all, one process: {wall:.2f} s, load {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}, this process's processor time "
              f"{time.process_time() - processor:.2f} s")
        main_on, main_waiting = on2 - on, waiting2 - waiting
        print(f"main thread: on a processor {main_on:.2f} s, waiting for one "
              f"{main_waiting:.2f} s, asleep {wall - main_on - main_waiting:.2f} s")
        print(f"  {'step':<30}{'clock':>8}{'on':>8}{'waiting':>9}{'asleep':>8}")
        for name, (c, o, w) in sorted(steps.seconds.items(), key=lambda kv: -kv[1][0]):
            print(f"  {name:<30}{c:8.2f}{o:8.2f}{w:9.2f}{c - o - w:8.2f}")
        c, mo, mw, bo, bw = commits.seconds
        print(f"writer's commits: {c:.2f} s; its thread on a processor {mo:.2f}, waiting "
              f"{mw:.2f}; its backend on a processor {bo:.2f}, waiting {bw:.2f}; the rest "
              f"(the GIL, the network, locks; below 0 when both waited at once) "
              f"{c - mo - mw - bo - bw:.2f}")
    finally:
        store.close()
        app.close()


if __name__ == "__main__":  # the options are bench_rebuild_split.py's
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_rebuild_split import main

    raise SystemExit(main([*sys.argv[1:], "--waits"]))
