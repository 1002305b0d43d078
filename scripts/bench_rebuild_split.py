"""Where a rebuild's processor time goes, outside as well as inside its Python: the rebuild
process's main thread, its other threads (the writer committing batches, the page read
ahead), and the PostgreSQL backends serving its connections (COPY ingest, index builds,
WAL), each as µs of processor time per event.

    .venv/bin/python scripts/bench_rebuild_split.py \
        --database postgresql://postgres@127.0.0.1:5432/test?schema=copy16_bench [--workers 1]

The log must exist (``bench_projections.py --database URL --no-breakdown`` makes it). The
rebuild runs as ``tradetape projections rebuild`` in a child process, sampled every 0.1 s
from ``/proc`` (Linux): each thread's and each backend's processor time since it started,
its last sample kept (a thread or a connection that ends loses at most its last 0.1 s).
A backend is the rebuild's when its client port is one of the child's sockets. Processor
time, not the clock: on a shared machine it is what compares between runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stat_path: str) -> float | None:
    """utime + stime of a process or thread, from its ``stat`` file."""
    try:
        text = Path(stat_path).read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def socket_ports(pid: int) -> set[int]:
    """The local TCP ports of ``pid``'s sockets (its connections to PostgreSQL)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[9] in inodes:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def backends_of(conn, ports: set[int]) -> list[tuple[int, str]]:
    if not ports:
        return []
    return conn.execute("SELECT pid, left(query, 50) FROM pg_stat_activity "
                        "WHERE client_port = ANY(%s)", (list(ports),)).fetchall()


def sample(pid: int, conn, threads: dict[int, float], backends: dict[int, float],
           queries: dict[int, set[str]]) -> None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        seconds = cpu_seconds(f"/proc/{pid}/task/{tid}/stat")
        if seconds is not None:
            threads[int(tid)] = seconds
    for backend, query in backends_of(conn, socket_ports(pid)):
        queries.setdefault(backend, set()).add(" ".join(query.split()[:4]))
        seconds = cpu_seconds(f"/proc/{backend}/stat")
        if seconds is not None:
            backends[backend] = seconds


def run(url: str, workers: int, batch_size: int, detail: bool = False) -> dict:
    import psycopg

    conn = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test",
                           autocommit=True)
    env = {**os.environ, "TRADETAPE_DATABASE_URL": url}
    cmd = [sys.executable, "-m", "api.cli", "projections", "rebuild", "--workers",
           str(workers), "--batch-size", str(batch_size), "--no-progress"]
    threads: dict[int, float] = {}
    backends: dict[int, float] = {}
    queries: dict[int, set[str]] = {}
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env)
    while child.poll() is None:
        with contextlib.suppress(OSError):  # the child ended while being sampled
            sample(child.pid, conn, threads, backends, queries)
        time.sleep(0.1)
    wall = time.perf_counter() - started
    conn.close()
    if child.returncode:
        raise SystemExit(f"rebuild failed: {child.returncode}")
    main = threads.pop(child.pid, 0.0)
    if detail:
        for tid, seconds in sorted(threads.items(), key=lambda kv: -kv[1]):
            print(f"  thread {tid}{' (main)' if tid == child.pid else ''}: {seconds:.2f} s")
        for backend, seconds in sorted(backends.items(), key=lambda kv: -kv[1]):
            print(f"  backend {backend}: {seconds:.2f} s, {sorted(queries[backend])[:4]}")
    return {"wall": wall, "main": main, "threads": sum(threads.values()),
            "backends": sum(backends.values()), "n_backends": len(backends)}


def events_in(url: str) -> int:
    from application.bootstrap import open_trading

    app = open_trading(url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", required=True, metavar="URL",
                        help="a PostgreSQL URL whose schema holds the log")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="passed to `projections rebuild` (1: one process, all sampled)")
    parser.add_argument("--batch-size", type=int, default=10_000, metavar="N",
                        help="events per page and per transaction")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="rebuilds one after the other, each printed")
    parser.add_argument("--detail", action="store_true",
                        help="each backend's processor time and the statements seen on it")
    parser.add_argument("--waits", action="store_true",
                        help="instead, rebuild in this process and split the main thread's "
                             "clock and the writer's commits (bench_rebuild_waits.py)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.waits:
        from scripts.bench_rebuild_waits import run as waits

        for _ in range(args.rounds):
            waits(args.database, args.batch_size)
        return 0
    events = events_in(args.database)
    per = 1e6 / events
    for _ in range(args.rounds):
        f = run(args.database, args.workers, args.batch_size, args.detail)
        total = f["main"] + f["threads"] + f["backends"]
        print(f"{events:,} events, {f['wall']:.1f} s wall ({events / f['wall']:,.0f} ev/s), "
              f"load {os.getloadavg()[0]:.1f}: processor µs/event main thread "
              f"{f['main'] * per:.1f}, other threads {f['threads'] * per:.1f}, "
              f"{f['n_backends']} PostgreSQL backends {f['backends'] * per:.1f}, "
              f"all {total * per:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
