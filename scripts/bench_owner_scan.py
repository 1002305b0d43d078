"""Benchmark: how long the api's owner versions take to learn whose a heavy append's events
are (``OwnerVersions._learn_up_to``: every GraphQL request waits for it after a
take-profit wave of ~58,000 events at 10,000 bots, issue 15).

    .venv/bin/python scripts/bench_owner_scan.py copy --schema S   # from bench_live_10000
    .venv/bin/python scripts/bench_owner_scan.py run --schema S [--events 58000]
        [--repeat 3] [--old PATH] [--cold] [--busy N]
    .venv/bin/python scripts/bench_owner_scan.py drop --schema S

``run`` times, each in a fresh process, learning the owners of the log's last ``--events``
events of ``S`` (a copy of ``bench_live_10000``: its seeding's tail, bots' deals and orders
opened, nearly every state naming an owner). Warm (default): the owners of everything
before them already learnt, as in an api that has run a while; ``--cold``: none known, as
right after the api's start (every aggregate's first event read). With ``--old PATH`` (a
checkout of other code, e.g. ``git archive main | tar -x -C PATH``) the runs alternate old
and new (A/B/A/B). ``--busy N``: N processes spin on the processor meanwhile, as the
engine and the projections' catch-up do after a wave (the wall then says what a request
waits on a loaded machine). Prints per run: wall seconds, the process's processor seconds, its
PostgreSQL backend's, and a digest of what was learnt (old and new must agree).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASE = "postgresql://postgres@127.0.0.1:5432/test"
TEMPLATE = "bench_live_10000"


class ApartReadSide:
    """What ``OwnerVersions`` asks of the api's read side, on one view store: its reads run
    on this thread, on the store's connection (the backend whose time is counted)."""

    def __init__(self, store):
        self.store = store

    def run_apart(self, query, *args, **kwargs):
        return query(self.store, *args, **kwargs)


def once(args) -> None:
    """One timed learning in this (fresh) process, the code of ``args.root``."""
    sys.path.insert(0, args.root)
    os.environ.setdefault("TRADETAPE_KEY_DIR", "/work/keys")
    from api.graphql import owner_versions
    from api.graphql.owner_versions import OwnerVersions
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.store import open_view_store

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_wave import backend_cpu

    if args.page:
        owner_versions.PAGE = args.page
    url = f"{args.base}?schema={args.schema}"
    trading = open_trading(url)
    store = open_view_store(parse_database_url(url))
    read = ApartReadSide(store)
    versions = OwnerVersions(trading, read)
    read.run_apart(versions._head_and_tracking)  # makes the statements, as the first read
    head = trading.recorder.max_notification_id() or 0
    start = max(head - args.events, 0)
    versions._learn_up_to(0 if not args.cold else start)
    if not args.cold:
        versions._learn_up_to(start)  # everything before: learnt (untimed)
    pg0, cpu0, wall0 = backend_cpu(store.conn), time.process_time(), time.perf_counter()
    versions._learn_up_to(head)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    pg = backend_cpu(store.conn) - pg0
    learnt = json.dumps([sorted(versions.touched.items()), sorted(versions.owners.items()),
                         sorted((k, list(v)) for k, v in versions.recent.items())])
    print(json.dumps({"events": head - start, "wall_s": round(wall, 3),
                      "process_cpu_s": round(cpu, 3), "postgres_cpu_s": round(pg, 3),
                      "digest": hashlib.sha256(learnt.encode()).hexdigest()[:12]}))
    store.close()
    trading.close()


def spin() -> None:
    while True:
        pass


def run(args) -> None:
    import multiprocessing

    busy = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in busy:
        process.start()
    try:
        compare(args)
    finally:
        for process in busy:
            process.terminate()
            process.join()


def compare(args) -> None:
    roots = [("new", str(ROOT))] + ([("old", args.old)] if args.old else [])
    results: dict[str, list[dict]] = {name: [] for name, _ in roots}
    for _ in range(args.repeat):
        for name, root in reversed(roots):  # old first, then new: A/B/A/B
            command = [sys.executable, __file__, "once", "--schema", args.schema,
                       "--base", args.base, "--events", str(args.events), "--root", root,
                       "--page", str(args.page if name == "new" else 0)]
            done = subprocess.run(command + (["--cold"] if args.cold else []), check=True,
                                  capture_output=True, text=True, cwd=root)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results[name].append(result)
            print(name, json.dumps(result), flush=True)
    for name, rows in results.items():
        spans = {key: (min(r[key] for r in rows), max(r[key] for r in rows))
                 for key in ("wall_s", "process_cpu_s", "postgres_cpu_s")}
        print(name, " ".join(f"{key} {low}-{high}" for key, (low, high) in spans.items()),
              "digests", sorted({r["digest"] for r in rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["copy", "run", "once", "drop"])
    parser.add_argument("--schema", required=True)
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--events", type=int, default=58_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--page", type=int, default=0, help="events a statement (new)")
    parser.add_argument("--old", help="a checkout of the code to compare with")
    parser.add_argument("--root", default=str(ROOT))
    args = parser.parse_args()
    if args.what == "once":
        return once(args)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_step import copy_schema, drop_schema

    if args.what == "copy":
        copy_schema(args.base, TEMPLATE, args.schema)
    elif args.what == "drop":
        drop_schema(args.base, args.schema)
    else:
        run(args)


if __name__ == "__main__":
    main()
