"""The read version awaited on the event loop (PostgreSQL): the statement every request
waits for runs on a connection of the loop's own instead of a worker thread, and gives
the same version the thread's read gives, so cached answers are exactly as fresh; a
connection the server ended is replaced; elsewhere (SQLite) the thread reads it."""

from __future__ import annotations

import asyncio

import pytest

from api.graphql.owner_versions import EVERYONE, OwnerVersions
from tests.api.conftest import served

BOTS = "{ bots(first: 10) { edges { node { id name status } } } }"


def _trade(server) -> tuple[str, str]:
    alice, bob = server.user("alice"), server.user("bob")
    server.running_deal(alice)
    server.running_deal(bob, "other")
    server.create_bot(alice, "idle")
    server.step()
    return alice.user_id, bob.user_id


def _learnt(versions: OwnerVersions) -> tuple:
    return (versions.touched, versions.owners,
            {owner: list(recent) for owner, recent in versions.recent.items()})


@pytest.mark.postgres
def test_the_version_awaited_on_the_loop_equals_the_one_read_on_a_thread(
        postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        read = server.client.app.state.graphql_read_side
        trading = server.runtime.trading
        on_loop, on_thread = OwnerVersions(trading, read), OwnerVersions(trading, read)
        assert asyncio.run(on_loop.snapshot_on_loop()) is None  # its first read: a thread's
        on_loop.snapshot()
        on_thread.snapshot()
        alice, bob = _trade(server)

        async def both():
            return await on_loop.snapshot_on_loop(), on_thread.snapshot()

        awaited, threaded = asyncio.run(both())
        assert awaited is not None and awaited.head > 0
        assert awaited == threaded
        assert _learnt(on_loop) == _learnt(on_thread)  # the new events' owners too
        for owner in (alice, bob, EVERYONE, None):
            assert on_loop.version_of(awaited, owner) == on_thread.version_of(threaded, owner)
        read.close()  # the loop's connection closed with the others


@pytest.mark.postgres
def test_on_postgres_a_cached_answer_follows_the_owners_events(postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        read = server.client.app.state.graphql_read_side
        alice = server.user("alice")
        bot_id = server.create_bot(alice, "first")
        assert server.gql(BOTS, token=alice.token) == server.gql(BOTS, token=alice.token)
        assert len(read._on_loop) == 1  # the version was awaited on the loop

        server.start_bot(alice, bot_id)
        server.step()
        nodes = [e["node"] for e in server.gql(BOTS, token=alice.token)["bots"]["edges"]]
        assert nodes == [{"id": bot_id, "name": "first", "status": "RUNNING"}]


@pytest.mark.postgres
def test_a_loop_connection_the_server_ended_is_replaced(postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        read = server.client.app.state.graphql_read_side
        alice = server.user("alice")
        server.create_bot(alice, "first")
        first = server.gql(BOTS, token=alice.token)  # the first version: on a thread
        assert server.gql(BOTS, token=alice.token) == first  # the next ones on the loop
        (conn,) = read._on_loop.values()
        ended = conn.info.backend_pid
        read.run(lambda store: store.query("SELECT pg_terminate_backend(%s)", (ended,)))

        # the read that finds it ended fails: the request is answered without the cache
        assert server.gql(BOTS, token=alice.token) == first
        assert server.gql(BOTS, token=alice.token) == first  # then a new one answers
        (again,) = read._on_loop.values()
        assert again.info.backend_pid != ended and not again.closed


def test_on_sqlite_the_version_is_read_on_a_thread(server):
    read = server.client.app.state.graphql_read_side
    versions = OwnerVersions(server.runtime.trading, read)
    versions.snapshot()
    assert asyncio.run(versions.snapshot_on_loop()) is None
    assert asyncio.run(read.query_on_loop("SELECT 1")) is None


@pytest.mark.postgres
def test_a_cancelled_read_leaves_no_busy_connection_behind(postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        read = server.client.app.state.graphql_read_side

        async def cancel_then_read():
            slow = asyncio.ensure_future(read.query_on_loop("SELECT pg_sleep(20)"))
            while not read._on_loop:  # connected, the statement sent
                await asyncio.sleep(0.01)
            (cancelled,) = read._on_loop.values()
            await asyncio.sleep(0.1)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            return cancelled, await asyncio.wait_for(read.query_on_loop("SELECT 1"), 10)

        cancelled, answer = asyncio.run(cancel_then_read())
        assert answer == [(1,)] and cancelled.closed
        read.close()


@pytest.mark.postgres
def test_a_read_during_the_views_open_waits_for_it(postgres_url, monkeypatch):
    """On PostgreSQL the views open beside the start: the api's first read of the version
    waits for their tables (it used to find none: UndefinedTable), and the loop's own read
    declines (None: read on a thread) until they are open."""
    import threading

    from api.graphql.read_side import ReadSide
    from projections.supervisor import SupervisedProjections
    from tests.api.conftest import open_server

    release, real_start = threading.Event(), SupervisedProjections.start

    def slow_start(self):
        release.wait(10)  # the open held back until the reads below are under way
        real_start(self)

    monkeypatch.setattr(SupervisedProjections, "start", slow_start)
    runtime, _ = open_server(postgres_url, monkeypatch)
    try:
        read = ReadSide(runtime)
        assert not runtime.read_models.is_open()
        assert asyncio.run(read.query_on_loop("SELECT 1")) is None  # not open: declined
        threading.Timer(0.3, release.set).start()
        version = OwnerVersions(runtime.trading, read).snapshot()  # waits, then reads
        assert version is not None and runtime.read_models.is_open()
        assert asyncio.run(read.query_on_loop("SELECT 1")) == [(1,)]
        read.close()
    finally:
        release.set()
        runtime.stop()
