"""The read version kept while nothing is written (PostgreSQL): the api LISTENs on the log's
and the views' channels, so a cached answer is served without reading the version again
until an append, a projections batch or a mutation of its own says something moved; then
the next answer is as fresh as before."""

from __future__ import annotations

import time

import pytest

from api.graphql import owner_versions
from tests.api.conftest import served

pytestmark = pytest.mark.postgres
BOTS = "{ bots(first: 10) { edges { node { id name status dealsOpened openDealId } } } }"
WAIT = 20.0  # seconds: far more than a NOTIFY takes; only reached when one is lost


def _counting_reads(read, monkeypatch) -> list[str]:
    """The statements the read side sends on the event loop (the read version's)."""
    sent: list[str] = []
    real = read.query_on_loop

    async def counted(text: str):
        sent.append(text)
        return await real(text)

    monkeypatch.setattr(read, "query_on_loop", counted)
    return sent


def _listening(server, account) -> None:
    """Requests until the server's watch listens (it connects in the background) and
    hears nothing more of what was written before."""
    read = server.client.app.state.graphql_read_side
    deadline = time.monotonic() + WAIT
    while not any(watch.listening for watch in read._watches.values()):
        assert time.monotonic() < deadline, "the watch never listened"
        server.gql(BOTS, token=account.token)
        time.sleep(0.05)
    (watch,) = read._watches.values()
    while True:  # the server's own projections may still commit what came before
        heard = watch.count
        time.sleep(0.3)
        if watch.count == heard:
            break
        assert time.monotonic() < deadline, "writes kept coming"
    server.gql(BOTS, token=account.token)  # the version read once more, now watched


def _a_running_bot_watched(server):
    """(the read side, alice with a running bot, the server's watch, listening)."""
    read = server.client.app.state.graphql_read_side
    alice = server.user("alice")
    bot_id = server.create_bot(alice, "first")
    server.start_bot(alice, bot_id)
    _listening(server, alice)
    (watch,) = read._watches.values()
    return read, alice, watch


def _once_its_deal_opened(server, account) -> dict:
    """``account``'s first bot as answered once its open deal shows (or after ``WAIT``):
    the NOTIFY reaches the watch a moment after the commit."""
    deadline = time.monotonic() + WAIT
    while True:
        node = server.gql(BOTS, token=account.token)["bots"]["edges"][0]["node"]
        if node["openDealId"] is not None or time.monotonic() > deadline:
            return node
        time.sleep(0.01)


def test_while_nothing_is_written_the_read_version_is_not_read_again(postgres_url,
                                                                       monkeypatch):
    monkeypatch.setattr(owner_versions, "MAX_REUSE", 600.0)  # only a write moves it
    with served(postgres_url, monkeypatch) as server:
        alice = server.user("alice")
        server.create_bot(alice, "first")
        _listening(server, alice)
        sent = _counting_reads(server.client.app.state.graphql_read_side, monkeypatch)

        answers = [server.gql(BOTS, token=alice.token) for _ in range(10)]

        assert sent == []
        assert all(answer == answers[0] for answer in answers)


def test_an_append_heard_of_makes_the_next_answer_fresh(postgres_url, monkeypatch):
    monkeypatch.setattr(owner_versions, "MAX_REUSE", 600.0)
    with served(postgres_url, monkeypatch) as server:
        alice = server.user("alice")
        bot_id = server.create_bot(alice, "first")
        server.start_bot(alice, bot_id)
        _listening(server, alice)
        before = server.gql(BOTS, token=alice.token)["bots"]["edges"][0]["node"]
        assert before["openDealId"] is None
        sent = _counting_reads(server.client.app.state.graphql_read_side, monkeypatch)

        server.step()  # the engine opens a deal: appended, then applied by the views
        node = _once_its_deal_opened(server, alice)

        deal = str(server.runtime.trading.get_bot(_uuid(bot_id)).open_deal_id)
        assert node["openDealId"] == deal and node["dealsOpened"] == 1
        assert sent  # read again because the append and the batch were heard of


def test_a_mutation_answered_here_is_in_the_very_next_answer(postgres_url, monkeypatch):
    monkeypatch.setattr(owner_versions, "MAX_REUSE", 600.0)
    with served(postgres_url, monkeypatch) as server:
        alice = server.user("alice")
        server.create_bot(alice, "first")
        _listening(server, alice)

        server.create_bot(alice, "second")  # through this server: no waiting for a NOTIFY
        names = [e["node"]["name"]
                 for e in server.gql(BOTS, token=alice.token)["bots"]["edges"]]

        assert sorted(names) == ["first", "second"]


def test_a_lost_listen_connection_reads_every_time_then_listens_again(postgres_url,
                                                                      monkeypatch):
    monkeypatch.setattr(owner_versions, "MAX_REUSE", 600.0)
    with served(postgres_url, monkeypatch) as server:
        read, alice, watch = _a_running_bot_watched(server)
        ended = watch.conn.info.backend_pid
        read.run(lambda store: store.query("SELECT pg_terminate_backend(%s)", (ended,)))
        deadline = time.monotonic() + WAIT
        while watch.listening and watch.conn.info.backend_pid == ended:
            assert time.monotonic() < deadline, "the lost connection went unnoticed"
            server.gql(BOTS, token=alice.token)
            time.sleep(0.05)

        server.step()  # whether or not a watch listens, the next answers follow it
        node = _once_its_deal_opened(server, alice)
        assert node["dealsOpened"] == 1
        _listening(server, alice)  # and it listens again
        assert watch.listening and watch.conn.info.backend_pid != ended


def _uuid(text: str):
    from uuid import UUID

    return UUID(text)


def test_a_views_batch_alone_reads_the_positions_again_not_the_logs_head(postgres_url,
                                                                          monkeypatch):
    """While no append was heard of, a projections batch (the views' NOTIFY) makes the
    read version be read again without the log's head, which an append under way makes
    slow to find (its entries past the head, not yet visible, are walked); an append heard
    of, or a position past the head kept, reads both again."""
    monkeypatch.setattr(owner_versions, "MAX_REUSE", 600.0)
    monkeypatch.setattr(owner_versions, "MAX_HEAD_REUSE", 600.0)
    with served(postgres_url, monkeypatch) as server:
        read, alice, watch = _a_running_bot_watched(server)
        sent = _counting_reads(read, monkeypatch)
        datastore = server.runtime.trading.recorder.datastore
        channel = read.run(lambda store: store.channel)

        def written(text: str) -> None:  # by another process: heard of by NOTIFY alone
            with datastore.get_connection() as conn, conn.transaction():
                conn.execute(text)
                conn.execute(f'NOTIFY "{channel}"')

        def heard_after(write) -> None:
            heard = watch.count
            write()
            deadline = time.monotonic() + WAIT
            while watch.stamp() == heard:
                assert time.monotonic() < deadline, "the NOTIFY never came"
                time.sleep(0.01)

        heard_after(lambda: written("SELECT 1"))
        server.gql(BOTS, token=alice.token)
        assert len(sent) == 1 and "MAX(" not in sent[0]  # the positions alone

        heard_after(server.step)  # the engine opens a deal: an append, then a batch
        node = _once_its_deal_opened(server, alice)
        assert node["openDealId"] is not None
        assert any("MAX(" in text for text in sent[1:])  # the head read again

        sent.clear()  # a position past the head kept (its append not heard of): both
        heard_after(lambda: written(f'UPDATE "{datastore.schema}".projection_tracking '
                                    "SET position = position + 5"))
        server.gql(BOTS, token=alice.token)
        assert [("MAX(" in text) for text in sent] == [False, True]
