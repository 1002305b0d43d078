"""Benchmark: back up, verify and restore a log of some hundred thousand events.

    .venv/bin/python scripts/bench_backup.py [--events 300000] [--folder var/bench_backup]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--fresh]

The source is a SQLite file filled (once; kept unless --fresh) with the backtests of
``bench_projections.py``. Measured: ``create`` (rows/s read and written, file size),
``verify`` (rows/s), ``restore`` into a new SQLite file and into a new PostgreSQL schema
(rows/s; the read models' rebuild after it is ``bench_projections.py``'s business).
Goal: create and verify at >= 20,000 events/s, so a million-event log is backed up (and
checked) in under a minute each.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--folder", default="var/bench_backup")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()

    from adapters.clock import SystemClock
    from application.backup import create, restore, verify
    from application.bootstrap import open_backup_store, open_trading

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = f"sqlite:///{folder / 'source.sqlite'}"
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{folder / 'source.sqlite'}{suffix}").unlink(missing_ok=True)
    app = open_trading(source)
    have = app.recorder.max_notification_id() or 0
    app.close()
    if have < args.events:
        from bench_projections import one_backtest

        for run in range(-(-(args.events - have) // 180_000)):
            one_backtest((source, f"bench-backup-{have}-{run}"))
    out = folder / f"b-{uuid.uuid4().hex[:8]}.tar.gz"

    made, took = timed(lambda: create(open_backup_store(source), out, clock=SystemClock(),
                                      version="bench"))
    rows = made.manifest["position"]
    report("create", rows, took, f"{out.stat().st_size / 1e6:.1f} MB")
    checked, took = timed(lambda: verify(out))
    assert checked.ok, checked.problems
    report("verify", rows, took)
    target = f"sqlite:///{folder / f'restored-{out.stem}.sqlite'}"
    _, took = timed(lambda: restore(out, open_backup_store(target)))
    report("restore into SQLite (verify included)", rows, took)
    schema = f"bench_backup_{uuid.uuid4().hex[:8]}"
    try:
        _, took = timed(lambda: restore(out, open_backup_store(f"{args.postgres}?schema={schema}")))
        report("restore into PostgreSQL (verify included)", rows, took)
    finally:
        drop(args.postgres, schema)
    return 0


def timed(step):
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def report(what: str, rows: int, took: float, extra: str = "") -> None:
    print(f"{what}: {rows:,} events in {took:.2f}s = {rows / took:,.0f} events/s {extra}")


def drop(url: str, schema: str) -> None:
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    with psycopg.connect(**_connect_kwargs(parse_database_url(url).env),
                         autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    sys.exit(main())
