"""An engine worker renews its leases while its appends are fenced by them (every bot of a
heavy candle's append share-locked until it commits). Both lock the same rows; at 10,000
bots, locked in different orders, they deadlocked: PostgreSQL refused one of them (an
append lost, or a renewal), several times a minute. Both now lock in bot order."""

from __future__ import annotations

import random
import threading
import time
import uuid

import psycopg

from adapters.event_store.leases import PostgresLeases, check_fence
from application.lease_fence import Fence
from application.settings import _connect_kwargs, parse_database_url

BOTS, SECONDS = 2000, 8.0


def test_renewals_and_fenced_appends_at_once_never_deadlock(postgres_url):
    database = parse_database_url(postgres_url)
    schema = database.env["POSTGRES_SCHEMA"]
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    leases = PostgresLeases(database, "worker-a")
    leases.join(60)
    bots = [uuid.uuid4() for _ in range(BOTS)]
    tokens: dict = {}
    for first in range(0, BOTS, 200):  # the table's order: not the bots' order
        part = bots[first:first + 200]
        random.shuffle(part)
        tokens.update(leases.acquire(part, 60))
    fence = Fence("worker-a", tokens)
    refused: list[str] = []
    stop = time.monotonic() + SECONDS

    def appends() -> None:
        with psycopg.connect(**_connect_kwargs(database.env)) as conn:
            while time.monotonic() < stop:
                try:
                    with conn.transaction(), conn.cursor() as cursor:
                        check_fence(cursor, schema, fence)
                        time.sleep(0.01)  # (the INSERT, under the fence's locks)
                except psycopg.errors.DeadlockDetected:
                    refused.append("append")

    def renewals() -> None:  # the tick's (rows read back) and the renewal thread's
        while time.monotonic() < stop:
            try:
                assert len(leases.renew(60)) == BOTS
                assert leases.extend(60) == BOTS
            except psycopg.errors.DeadlockDetected:
                refused.append("renewal")

    run_together([appends, renewals], [leases])
    assert refused == []


def test_a_renewal_round_extends_every_lease_of_its_worker_and_no_other(postgres_url):
    database = parse_database_url(postgres_url)
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{database.env["POSTGRES_SCHEMA"]}"')
    a, b = PostgresLeases(database, "worker-a"), PostgresLeases(database, "worker-b")
    a.join(60)
    b.join(60)
    mine, theirs = [uuid.uuid4() for _ in range(30)], [uuid.uuid4() for _ in range(20)]
    tokens = a.acquire(mine, 1)
    b.acquire(theirs, 1)
    try:
        assert a.extend(60) == 30
        time.sleep(1.5)  # the leases not extended have ended
        assert a.holders(mine + theirs) == dict.fromkeys(mine, "worker-a")
        assert a.renew(60) == tokens  # extended, not taken again: the same tokens
    finally:
        for worker in (a, b):
            worker._drop()


def run_together(targets, workers: list[PostgresLeases]) -> None:
    """Each target on a thread of its own, until they end; then the workers leave."""
    threads = [threading.Thread(target=target) for target in targets]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SECONDS + 60)
    finally:
        for worker in workers:
            worker.leave()


def test_two_workers_taking_and_giving_up_the_same_bots_never_deadlock(postgres_url):
    """A worker giving bots up (its excess, or all of them as it stops) while another takes
    them: both lock the same rows, so both must lock them in bot order."""
    database = parse_database_url(postgres_url)
    schema = database.env["POSTGRES_SCHEMA"]
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    workers = [PostgresLeases(database, name) for name in ("worker-a", "worker-b")]
    for worker in workers:
        worker.join(60)
    bots = [uuid.uuid4() for _ in range(BOTS)]
    for first in range(0, BOTS, 200):  # the table's order: not the bots' order
        part = bots[first:first + 200]
        random.shuffle(part)
        workers[0].acquire(part, 60)
    refused: list[str] = []
    stop = time.monotonic() + SECONDS

    def take_and_give_up(worker: PostgresLeases, stops: bool) -> None:
        while time.monotonic() < stop:
            try:
                worker.acquire(bots, 60)
                if stops:  # (and starts again: the next call joins)
                    worker.leave()
                else:
                    worker.release(bots)
            except psycopg.errors.DeadlockDetected:
                refused.append(worker.worker)

    run_together([lambda: take_and_give_up(workers[0], True),
                  lambda: take_and_give_up(workers[1], False)], workers)
    assert refused == []
