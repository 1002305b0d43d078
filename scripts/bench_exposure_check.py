"""Benchmark: an engine append's exposure-hold check for N users (``check_stamps``'s
locks, ``adapters/event_store/exposure_stamps.py``), before and after session 18.

    .venv/bin/python scripts/bench_exposure_check.py [--users 10000] [--runs 100] \
        [--database postgresql://postgres@127.0.0.1:5432/test]

Three rounds, the old statement (one wait on every bucket) and the new one (buckets tried,
users' own keys in a held bucket) alternated, ``--runs`` checks each, each in its own
transaction: processor time of this process and of the server's backend (from /proc: the
server on this host) per check; then the new check with one bucket kept by a hold on a
second connection (the held user not judged), and with the held user judged (refused
after the bounded wait). Prints how many users share the held user's bucket. Takes only
advisory locks (no table, no schema): nothing to clean up.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from adapters.event_store import exposure_stamps as es
from application.settings import _connect_kwargs, parse_database_url

SPACE = "bench_exposure"  # the locks' name space (a schema name; none is created)


def old_check(curs, owners: list[str]) -> None:
    keys = sorted({es.lock_keys(SPACE, o) for o in owners})
    curs.execute("SELECT pg_advisory_xact_lock_shared(k1, k2) FROM unnest(%s::int[], "
                 "%s::int[]) AS k(k1, k2)", ([k[0] for k in keys], [k[1] for k in keys]))


def new_check(curs, owners: list[str]) -> None:
    es._wait_for_holds(curs, SPACE, owners)


def server_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_check(conn, check: Callable, owners: list[str], runs: int) -> tuple[float, float]:
    """(client, server) processor milliseconds per check."""
    pid = conn.info.backend_pid
    server, client = server_seconds(pid), time.process_time()
    for _ in range(runs):
        with conn.transaction(), conn.cursor() as curs:
            check(curs, owners)
    return ((time.process_time() - client) * 1000 / runs,
            (server_seconds(pid) - server) * 1000 / runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    kwargs = _connect_kwargs(parse_database_url(args.database).env)
    owners = [str(uuid.UUID(int=n * 7919 + 1)) for n in range(args.users)]
    with psycopg.connect(**kwargs, autocommit=True) as conn, \
            psycopg.connect(**kwargs, autocommit=True) as holder:
        print(f"{args.users} users, {len({es.lock_keys(SPACE, o) for o in owners})} buckets")
        for n in range(3):
            for name, check in (("old", old_check), ("new", new_check)):
                client, server = per_check(conn, check, owners, args.runs)
                print(f"round {n} {name}, nothing held: client {client:.2f} ms, "
                      f"server {server:.2f} ms")
        held = owners[0]
        bucket = es.lock_keys(SPACE, held)
        mates = sum(es.lock_keys(SPACE, o) == bucket for o in owners) - 1
        print(f"users sharing the held user's bucket: {mates}")
        holder.execute("SELECT pg_advisory_lock(%s, %s), pg_advisory_lock(%s, %s)",
                       (*bucket, *es.owner_keys(SPACE, held)))
        for n in range(3):
            client, server = per_check(conn, new_check, owners[1:], args.runs)
            print(f"round {n} new, one bucket held: client {client:.2f} ms, "
                  f"server {server:.2f} ms")
        started = time.monotonic()
        try:
            per_check(conn, new_check, owners, 1)
        except es.ExposureHeldError as error:
            print(f"the held user judged: {error.code} {error.owners} after "
                  f"{time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    main()
