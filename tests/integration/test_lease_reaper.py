"""The lease tables keep only what someone can still hold: a worker's row outlives its
process (a restart, a kill) and a bot's lease row its bot (stopped, deleted) until the
reaper deletes them, a bounded number at a time, once they ended long enough ago. A token
is never handed out twice, even for a row deleted and made again: a worker that died
holding token N can never present a token some later holder holds."""

from __future__ import annotations

import uuid

import psycopg

from adapters.event_store.leases import TOKENS, PostgresLeases, check_fence
from application.lease_fence import Fence
from application.settings import _connect_kwargs, parse_database_url, prepare
from tests.integration.test_engine_leases import Worker, seed_bots

LONG_AGO = "now() - interval '1 hour'"


def sql_of(url: str):
    database = parse_database_url(url)
    conn = psycopg.connect(**_connect_kwargs(database.env), autocommit=True)
    return conn, database.env["POSTGRES_SCHEMA"]


def rows(url: str, table: str, column: str) -> set:
    conn, schema = sql_of(url)
    with conn:
        return {r for (r,) in conn.execute(f'SELECT {column} FROM "{schema}".{table}')}


def age(url: str, table: str, where: str = "true") -> None:
    """Rows of ``table`` (``where``) ended an hour ago."""
    conn, schema = sql_of(url)
    with conn:
        conn.execute(f'UPDATE "{schema}".{table} SET expires_at = {LONG_AGO} WHERE {where}')


def worker(url: str, name: str) -> PostgresLeases:
    database = parse_database_url(url)
    prepare(database)
    store = PostgresLeases(database, name)
    store.join(60)
    return store


def refused(url: str, fence: Fence) -> bool:
    conn, schema = sql_of(url)
    with conn:
        try:
            with conn.transaction():
                check_fence(conn.cursor(), schema, fence)
        except psycopg.Error:
            return True
        return False


def test_rows_no_one_can_hold_are_reaped_and_their_tokens_never_come_back(postgres_url):
    one, two, hung = uuid.uuid4(), uuid.uuid4(), None
    a = worker(postgres_url, "a")
    first = a.acquire([one, two], 60)
    a.release([two])  # (its bot stopped)
    a._drop()  # the process killed: its session lock gone, its rows left behind
    hung = worker(postgres_url, "hung")  # alive (its lock held), its row expired long ago
    age(postgres_url, "engine_leases")
    age(postgres_url, "engine_workers", "worker IN ('a', 'hung')")
    b = worker(postgres_url, "b")
    try:
        assert b.reap(60) == (2, 1)  # both leases (ended an hour ago), a's row
        assert rows(postgres_url, "engine_workers", "worker") == {"b", "hung"}
        assert rows(postgres_url, "engine_leases", "bot_id") == set()
        assert b.reap(60) == (0, 0)

        again = b.acquire([one, two], 60)  # made again: tokens past every one handed out
        assert min(again.values()) > max(first.values())
        assert refused(postgres_url, Fence("a", {one: first[one]}))
        assert not refused(postgres_url, Fence("b", {one: again[one]}))
        b.release([one, two])
        back = worker(postgres_url, "a")  # the same name again (a worker named by hand)
        assert back.acquire([one], 60)[one] > max(again.values())
        back.leave()
    finally:
        for store in (b, hung):
            store.leave()


def test_the_reaper_deletes_a_bounded_number_of_rows_at_a_time(postgres_url):
    a = worker(postgres_url, "a")
    try:
        a.acquire([uuid.uuid4() for _ in range(5)], 60)
        age(postgres_url, "engine_leases")
        assert a.reap(60, limit=2) == (2, 0)
        assert a.reap(60, limit=2) == (2, 0)
        assert a.reap(60, limit=2) == (1, 0)
    finally:
        a.leave()


def test_tokens_go_on_past_those_of_a_table_made_before_the_token_sequence(postgres_url):
    bot = uuid.uuid4()
    a = worker(postgres_url, "a")
    a.acquire([bot], 60)
    a.leave()
    conn, schema = sql_of(postgres_url)
    with conn:  # as an older version left it: tokens counted per row, no sequence
        conn.execute(f'DROP SEQUENCE "{schema}".{TOKENS}')
        conn.execute(f'UPDATE "{schema}".engine_leases SET token = 41')
    b = worker(postgres_url, "b")
    try:
        assert min(b.acquire([bot, uuid.uuid4()], 60).values()) > 41
    finally:
        b.leave()


def test_a_worker_reaps_the_rows_a_killed_one_left_at_its_first_tick(postgres_url):
    seed_bots(postgres_url, 2)
    gone = Worker(postgres_url, "gone", seconds=60)
    gone.leases.tick()
    gone.store._drop()  # killed: its lock gone, its row and leases left behind
    age(postgres_url, "engine_workers", "worker = 'gone'")
    age(postgres_url, "engine_leases")
    fresh = Worker(postgres_url, "fresh", seconds=60)
    try:
        fresh.leases.tick()  # adopts the bots (new tokens), reaps the dead worker's row
        assert rows(postgres_url, "engine_workers", "worker") == {"fresh"}
        assert len(fresh.leases.held) == 2
    finally:
        fresh.close()
        gone.trading.close()


def test_the_reaper_vacuums_the_lease_tables_whose_rows_every_renewal_rewrites(postgres_url):
    """Where autovacuum is off or behind, the dead tuples of the renewals piled up."""
    a = worker(postgres_url, "a")
    try:
        a.acquire([uuid.uuid4() for _ in range(5)], 60)
        for _ in range(20):
            a.renew(60)
        before = vacuums(postgres_url)
        a.reap(60)
        assert vacuums(postgres_url) == {table: n + 1 for table, n in before.items()}
    finally:
        a.leave()


def vacuums(url: str) -> dict[str, int]:
    conn, schema = sql_of(url)
    with conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return dict(conn.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE schemaname = %s "
            "AND relname IN ('engine_workers', 'engine_leases')", (schema,)).fetchall())


def test_a_tick_rewrites_only_the_leases_the_renewal_thread_did_not_renew_lately(
        postgres_url):
    """Each rewrite of a lease row leaves a dead row version: the tick, which renewed every
    lease every quarter lease as the renewal thread does, leaves a lease renewed within the
    last quarter lease as it is (the same row version), and renews one that was not (the
    renewal thread late or stopped: the lease still holds)."""
    fresh, late = seed_bots(postgres_url, 2)
    w = Worker(postgres_url, "w", seconds=60)
    try:
        w.leases.tick()
        assert set(w.leases.held) == {fresh, late}
        age(postgres_url, "engine_leases", f"bot_id = '{late}'")
        before = versions(postgres_url)
        w.leases.tick()
        after = versions(postgres_url)
        assert after[fresh] == before[fresh]  # not rewritten
        assert after[late] != before[late]  # renewed: expires a lease time from now
        assert set(w.leases.held) == {fresh, late}
        conn, schema = sql_of(postgres_url)
        with conn:
            (left,), = conn.execute(f'SELECT extract(epoch FROM expires_at - now()) FROM '
                                    f'"{schema}".engine_leases WHERE bot_id = %s', (late,))
        assert left > 50
    finally:
        w.close()


def versions(url: str) -> dict:
    """Each lease row's version (its xmin: a new one at every rewrite)."""
    conn, schema = sql_of(url)
    with conn:
        return dict(conn.execute(f'SELECT bot_id, xmin::text FROM "{schema}".engine_leases'))
