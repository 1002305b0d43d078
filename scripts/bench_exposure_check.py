"""Benchmark: an engine append's exposure-hold check for N users (``check_stamps``'s
locks, ``adapters/event_store/exposure_stamps.py``), hold19's and lock19's (session 18).

    .venv/bin/python scripts/bench_exposure_check.py [--users 10000] [--runs 100] \
        [--database postgresql://postgres@127.0.0.1:5432/test]

hold19's check tried a shared lock per bucket (a hold took its bucket exclusive); lock19's
tries one of each bucket's ``SLOTS`` keys exclusive (a hold takes them all shared). Each
figure: ``--runs`` checks, each in its own transaction, processor time of this process and
of the server's backend (from /proc: the server on this host) per check, and the advisory
locks the check's transaction holds. Three rounds, the two checks alternated, with nothing
held, with one bucket kept by a hold on a second connection (the held user not judged),
and with another engine append's transaction open on a third connection (its check done
on the same users; lock19's with ``SLOTS`` 1 too: the bucket alone, exclusive). Then each
check with the held user judged (refused after the bounded wait). Prints how many users
share the held user's bucket. Takes only advisory locks (no table, no schema): nothing
to clean up.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg

from adapters.event_store import exposure_stamps as es
from application.settings import _connect_kwargs, parse_database_url

SPACE = "bench_exposure"  # the locks' name space (a schema name; none is created)
HOLD19_SPACE = "bench_exposure_hold19"


@lru_cache(maxsize=1 << 16)  # (cached as ``lock_keys`` is)
def hold19_keys(owner: str) -> tuple[int, int]:
    return es._space("exposure", HOLD19_SPACE), es.lock_keys(SPACE, owner)[1]


def hold19_check(curs, owners: list[str]) -> None:
    """hold19's ``_wait_for_holds``: shared bucket locks tried, own keys in a held one."""
    buckets = {o: hold19_keys(o) for o in owners}
    keys = sorted(set(buckets.values()))
    curs.execute(es._TRY_SHARED, ([k[0] for k in keys], [k[1] for k in keys]))
    kept = {es._key(row) for row in curs.fetchall()}
    if not kept:
        return
    mine = {o: es.owner_keys(SPACE, o) for o in owners if buckets[o] in kept}
    keys = sorted(set(mine.values()))
    curs.execute(es._TRY_SHARED, ([k[0] for k in keys], [k[1] for k in keys]))
    waited = sorted(es._key(row) for row in curs.fetchall())
    if waited:
        curs.execute("SET LOCAL lock_timeout = '5s'")
        curs.execute("SELECT pg_advisory_xact_lock_shared(k1, k2) FROM unnest("
                     "%s::int[], %s::int[]) AS k(k1, k2)",
                     ([k[0] for k in waited], [k[1] for k in waited]))


def lock19_check(curs, owners: list[str]) -> None:
    es._wait_for_holds(curs, SPACE, owners)


@contextmanager
def slots(n: int):
    before, es.SLOTS = es.SLOTS, n
    try:
        yield
    finally:
        es.SLOTS = before


def hold19_hold(conn, owner: str) -> None:
    conn.execute("SELECT pg_advisory_lock(%s, %s), pg_advisory_lock(%s, %s)",
                 (*hold19_keys(owner), *es.owner_keys(SPACE, owner)))


def lock19_hold(conn, owner: str) -> None:
    keys = es.slot_keys(es.lock_keys(SPACE, owner))
    conn.execute("SELECT pg_advisory_lock_shared(k1, k2) FROM unnest(%s::int[], %s::int[]) "
                 "AS k(k1, k2)", ([k[0] for k in keys], [k[1] for k in keys]))
    conn.execute("SELECT pg_advisory_lock(%s, %s)", es.owner_keys(SPACE, owner))


def server_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_check(conn, check: Callable, owners: list[str], runs: int) -> str:
    """(client, server) processor milliseconds per check, and the locks it holds."""
    pid = conn.info.backend_pid
    server, client = server_seconds(pid), time.process_time()
    for _ in range(runs):
        with conn.transaction(), conn.cursor() as curs:
            check(curs, owners)
    client = (time.process_time() - client) * 1000 / runs
    server = (server_seconds(pid) - server) * 1000 / runs
    with conn.transaction(), conn.cursor() as curs:
        check(curs, owners)
        curs.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND "
                     "locktype = 'advisory'")
        locks = curs.fetchone()[0]
    return f"client {client:.2f} ms, server {server:.2f} ms, {locks} locks"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    kwargs = _connect_kwargs(parse_database_url(args.database).env)
    owners = [str(uuid.UUID(int=n * 7919 + 1)) for n in range(args.users)]
    held = owners[0]
    bucket = es.lock_keys(SPACE, held)
    mates = sum(es.lock_keys(SPACE, o) == bucket for o in owners) - 1
    checks = (("hold19", hold19_check, hold19_hold), ("lock19", lock19_check, lock19_hold))
    with psycopg.connect(**kwargs, autocommit=True) as conn, \
            psycopg.connect(**kwargs, autocommit=True) as holder, \
            psycopg.connect(**kwargs, autocommit=True) as engine:
        print(f"{args.users} users, {len({es.lock_keys(SPACE, o) for o in owners})} buckets, "
              f"{mates} users share the held user's bucket, SLOTS {es.SLOTS}")
        for n in range(3):
            for name, check, _ in checks:
                print(f"round {n} {name}, nothing held: "
                      f"{per_check(conn, check, owners, args.runs)}")
            for name, check, hold in checks:
                hold(holder, held)
                try:
                    print(f"round {n} {name}, one bucket held: "
                          f"{per_check(conn, check, owners[1:], args.runs)}")
                finally:
                    holder.execute("SELECT pg_advisory_unlock_all()")
            for name, check, slot_count in (*((c[0], c[1], es.SLOTS) for c in checks),
                                            ("lock19 SLOTS 1", lock19_check, 1)):
                with slots(slot_count), engine.transaction(), engine.cursor() as curs:
                    check(curs, owners)  # (kept until the figure is taken)
                    print(f"round {n} {name}, another append in flight: "
                          f"{per_check(conn, check, owners, args.runs)}")
        for name, check, hold in checks:
            hold(holder, held)
            started = time.monotonic()
            try:
                per_check(conn, check, owners, 1)
            except (es.ExposureHeldError, psycopg.errors.LockNotAvailable) as error:
                # (hold19's check here raises the lock_not_available the store names)
                print(f"{name}, the held user judged: {type(error).__name__} after "
                      f"{time.monotonic() - started:.2f} s")
            finally:
                holder.execute("SELECT pg_advisory_unlock_all()")


if __name__ == "__main__":
    main()
