"""An engine worker renews its leases on a thread of its own: a worker busy for longer than a
lease (a long step holding the engine lock, or the takeover of a dead worker's bots) keeps
every bot it holds, and no other worker can take them meanwhile. Only a tick that never
finishes gives them up, so that a stuck worker's bots still go to another one."""

from __future__ import annotations

import threading
import time

from psycopg import sql

from adapters.event_store.leases import PostgresLeases
from application.settings import parse_database_url
from tests.integration.test_engine_leases import Worker, seed_bots

LEASE = 2.0  # seconds: renewed every 0.5 s


def database_now(store: PostgresLeases) -> float:
    ((now,),) = store._run(sql.SQL("SELECT extract(epoch FROM now())::float8"))
    return now


def holders_while(rival: PostgresLeases, bots: list, seconds: float) -> list[dict]:
    """What a rival worker sees holding ``bots``, every 0.1 s for ``seconds`` of the
    database's time (its clock decides expiry)."""
    seen, ends = [], database_now(rival) + seconds
    while database_now(rival) < ends:
        seen.append(rival.holders(bots))
        time.sleep(0.1)
    return seen


def started(worker: Worker, bots: list) -> Worker:
    worker.leases.start()
    wait_until(lambda: set(worker.leases.held) == set(bots))
    return worker


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_in_a_step_longer_than_a_lease_keeps_its_bots(postgres_url):
    bots = seed_bots(postgres_url, accounts=2)
    busy = started(Worker(postgres_url, "busy", seconds=LEASE), bots)
    rival = PostgresLeases(parse_database_url(postgres_url), "rival")
    try:
        with busy.paper.lock:  # a step that lasts three lease times
            busy.leases.wake()  # its tick now waits for the engine lock
            seen = holders_while(rival, bots, 3 * LEASE)
        assert seen and all(h == dict.fromkeys(bots, "busy") for h in seen)
        assert rival.acquire(bots, LEASE) == {}
    finally:
        rival.leave()
        busy.leases.stop()
        busy.trading.close()


def test_a_worker_taking_over_a_dead_workers_bots_keeps_its_own(postgres_url):
    bots = seed_bots(postgres_url, accounts=2)
    busy = Worker(postgres_url, "busy", seconds=LEASE)  # joins
    doomed = Worker(postgres_url, "doomed", seconds=60)
    doomed.leases.tick()  # one of two live workers: takes one account's bot
    assert len(doomed.leases.held) == 1
    started(busy, [b for b in bots if b not in doomed.leases.held])
    rival = PostgresLeases(parse_database_url(postgres_url), "rival")
    entered, finish = threading.Event(), threading.Event()
    follow_many = busy.paper.follow_many

    def slow_follow_many(bot_ids, loaded=None):  # the takeover: lasts until finish is set
        entered.set()
        finish.wait(60)
        return follow_many(bot_ids, loaded)

    busy.paper.follow_many = slow_follow_many
    try:
        doomed.store._drop()  # its connection gone, as with kill -9
        busy.leases.wake()
        assert entered.wait(30)
        seen = holders_while(rival, bots, 3 * LEASE)  # the takeover lasts 3 lease times
        # its own bot, and the dead worker's it took over, stay leased to it throughout
        assert seen and all(h == dict.fromkeys(bots, "busy") for h in seen)
        finish.set()
        wait_until(lambda: busy.paper.bot_ids == set(bots))
    finally:
        finish.set()
        rival.leave()
        busy.leases.stop()
        busy.trading.close()
        doomed.trading.close()


def test_a_worker_whose_tick_never_finishes_gives_its_bots_up(postgres_url):
    bots = seed_bots(postgres_url, accounts=2)
    stuck = started(Worker(postgres_url, "stuck", seconds=LEASE), bots)
    stuck.leases.stall_rounds = 4  # one lease time, instead of thirty
    rival = PostgresLeases(parse_database_url(postgres_url), "rival")
    try:
        with stuck.paper.lock:  # a step that never ends
            stuck.leases.wake()
            seen = holders_while(rival, bots, 4 * LEASE)
            assert seen[0] == dict.fromkeys(bots, "stuck")
            assert seen[-1] == {}  # expired: free for the next worker's tick
            assert set(rival.acquire(bots, LEASE)) == set(bots)
    finally:
        rival.leave()
        stuck.leases.stop()
        stuck.trading.close()
