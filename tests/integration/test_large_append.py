"""One candle of a thousand bots is one append of tens of thousands of events (27,000, 12 MB,
when every bot opens its first deal with ten safety orders). Such an append, fenced by the
worker's leases, must return, store every event as given or none, and be refused whole when
a single lease is lost. Before the fix it never returned: psycopg's pipeline stopped sending
part way through the INSERT and both sides waited for each other (see
``adapters/event_store/postgres.py``, ``ApplicationRecorder._append``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.event_store.leases import PostgresLeases
from application.bootstrap import open_trading
from application.lease_fence import Fence, current_fence, fenced
from application.settings import _connect_kwargs, parse_database_url
from domain.errors import LeaseLostError
from tests.conftest import POSTGRES_URL

BOTS = 20
# 20 MB in one INSERT: more than the socket buffers hold while the server waits for the
# table lock; the pipelined append hung on it every time (and on a real 12 MB candle).
EVENTS, STATE_BYTES = 10_000, 2_000


def schema_of(url: str) -> str:
    return parse_database_url(url).env["POSTGRES_SCHEMA"]


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(**_connect_kwargs(parse_database_url(url).env))


def big_batch(bots: list[uuid.UUID]) -> list[StoredEvent]:
    """Events of ``bots``, each state distinct (its index) and ``STATE_BYTES`` long."""
    return [
        StoredEvent(
            originator_id=bots[i % len(bots)],
            originator_version=i // len(bots) + 1,
            topic="tests.large_append:Bot.Noted",
            state=f'{{"n":{i},"pad":"'.encode().ljust(STATE_BYTES - 2, b"x") + b'"}',
        )
        for i in range(EVENTS)
    ]


def stored(url: str) -> tuple[list[tuple], int]:
    """The events as stored (id, version, topic, state) in log order, and how many seals."""
    schema = schema_of(url)
    with connect(url) as conn:
        rows = conn.execute(
            f'SELECT originator_id, originator_version, topic, state FROM "{schema}".'
            "trading_events ORDER BY notification_id"
        ).fetchall()
        ((seals,),) = conn.execute(f'SELECT count(*) FROM "{schema}".event_seals').fetchall()
    return [(i, v, t, bytes(s)) for i, v, t, s in rows], seals


def end_appends_of(url: str) -> None:
    """Ends the database sessions still working in this test's schema (a hung append)."""
    with psycopg.connect(**_connect_kwargs(parse_database_url(url).env), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
            "pg_backend_pid() AND query LIKE %s",
            (f'%"{schema_of(url)}"%',),
        )


@pytest.fixture
def engine(postgres_url: str) -> Iterator[tuple]:
    """An engine worker's store (its appends fenced) holding the leases of ``BOTS`` bots."""
    trading = open_trading(postgres_url)
    trading.recorder.fence_source = current_fence  # as open_engine_leases wires it
    leases = PostgresLeases(parse_database_url(postgres_url), "worker-a")
    leases.join(60)
    bots = [uuid.uuid4() for _ in range(BOTS)]
    tokens = leases.acquire(bots, 60)
    yield trading, leases, Fence("worker-a", tokens), bots
    end_appends_of(postgres_url)
    leases.leave()
    trading.close()


def append_on_a_thread(recorder, fence: Fence, events: list) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        with fenced(fence):
            try:
                outcome["ids"] = recorder.insert_events(events)
            except Exception as error:  # reported by the test
                outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_fenced_append_of_20_mb_returns_with_every_event_while_another_append_waits(
    postgres_url, engine
):
    trading, _, fence, bots = engine
    events = big_batch(bots)
    # Another worker's append under way: it holds the events table's lock for a second,
    # so the server reads nothing of this append meanwhile.
    other = connect(postgres_url)
    other.execute(f'LOCK TABLE "{schema_of(postgres_url)}".trading_events IN EXCLUSIVE MODE')
    thread, outcome = append_on_a_thread(trading.recorder, fence, events)
    thread.join(1.0)
    other.commit()
    other.close()
    thread.join(120)  # a generous bound: the append takes a few seconds
    if thread.is_alive():
        end_appends_of(postgres_url)
    assert not thread.is_alive(), "the append never returned"
    assert "error" not in outcome
    assert len(outcome["ids"]) == EVENTS == len(set(outcome["ids"]))
    rows, seals = stored(postgres_url)
    assert rows == [(e.originator_id, e.originator_version, e.topic, e.state) for e in events]
    assert seals == EVENTS


def test_one_lost_lease_refuses_the_whole_big_append(postgres_url, engine):
    trading, leases, fence, bots = engine
    stolen = bots[7]
    leases.release([stolen])  # given away, and taken by another worker: its token moves on
    thief = PostgresLeases(parse_database_url(postgres_url), "worker-b")
    try:
        thief.join(60)
        # a later token (from the schema's one sequence: not necessarily the next number)
        assert thief.acquire([stolen], 60)[stolen] > fence.tokens[stolen]
        thread, outcome = append_on_a_thread(trading.recorder, fence, big_batch(bots))
        thread.join(120)
        if thread.is_alive():
            end_appends_of(postgres_url)
        assert not thread.is_alive(), "the append never returned"
        assert isinstance(outcome.get("error"), LeaseLostError)
        assert outcome["error"].bot_ids == [stolen]
        assert stored(postgres_url) == ([], 0)  # nothing written, not even a seal
    finally:
        thief.leave()


@pytest.fixture
def library_url(postgres_url: str) -> Iterator[str]:
    """A second schema, for the same events appended by the library's own path."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    end_appends_of(f"{POSTGRES_URL}?schema={schema}")
    with psycopg.connect(
        **_connect_kwargs(parse_database_url(POSTGRES_URL).env), autocommit=True
    ) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("off", ["TRADETAPE_LIBRARY_APPEND=1", "TRADETAPE_LIBRARY_PATHS=1",
                                 "another eventsourcing"])
def test_the_library_own_append_stores_the_same_bytes_and_seals(
    postgres_url, library_url, monkeypatch, off
):
    from adapters.security.audit_key import AUDIT_KEY_ENV
    from application import library_seam

    # one audit key for both stores, so their seals can be compared
    monkeypatch.setenv(AUDIT_KEY_ENV, "k" * 64)
    bots = [uuid.uuid4() for _ in range(3)]
    events = big_batch(bots)[:300]
    ours = open_trading(postgres_url)
    if "=" in off:  # the shipped switch, or the seam's for every fast path
        monkeypatch.setenv(*off.split("="))
    else:  # not the version the append was written against: the library's own
        monkeypatch.setattr(library_seam, "installed_version", lambda: "9.6.0")
    library = open_trading(library_url)
    try:
        assert (ours.recorder.library_append, library.recorder.library_append) == (False, True)
        for trading in (ours, library):
            trading.recorder.insert_events(events[:100])
            trading.recorder.insert_events(events[100:])
        assert (
            stored(postgres_url)
            == stored(library_url)
            == ([(e.originator_id, e.originator_version, e.topic, e.state) for e in events], 300)
        )
        seals = []
        for url in (postgres_url, library_url):
            with connect(url) as conn:
                seals.append(
                    conn.execute(
                        f'SELECT * FROM "{schema_of(url)}".event_seals '
                        "ORDER BY originator_id, originator_version"
                    ).fetchall()
                )
        assert seals[0] == seals[1] and len(seals[0]) == 300
    finally:
        ours.close()
        library.close()


def test_an_append_wakes_the_processes_listening_once_it_commits(postgres_url, engine):
    trading, _, fence, bots = engine
    # The channel is named after the table, shared by every schema (other tests, other
    # helpers): one of this test's own keeps the count exact.
    channel = trading.recorder.channel_name = f"tt_{schema_of(postgres_url)}"
    with psycopg.connect(
        **_connect_kwargs(parse_database_url(postgres_url).env), autocommit=True
    ) as listener:
        listener.execute(f"LISTEN {channel}")
        with fenced(fence):
            trading.recorder.insert_events(big_batch(bots)[:40])
        woken = [n.channel for n in listener.notifies(timeout=2)]
    assert woken == [channel]
    assert len(stored(postgres_url)[0]) == 40


def test_an_append_whose_seals_take_longer_than_the_idle_timeout_still_commits(
    postgres_url, monkeypatch
):
    """A heavy candle's seals (120,000 events at 10,000 bots' first close) took longer than
    the library's idle-in-transaction timeout (5 s) on a loaded machine: the server cut the
    append off, at every retry. Made slow here, with the timeout made short."""
    import time

    monkeypatch.setenv("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "1")
    trading = open_trading(postgres_url)
    real_seal_texts = trading.recorder.seal_texts

    def slow_seal_texts(*args, **kwargs):
        time.sleep(2.5)
        return real_seal_texts(*args, **kwargs)

    monkeypatch.setattr(trading.recorder, "seal_texts", slow_seal_texts)
    events = big_batch([uuid.uuid4() for _ in range(3)])[:30]
    try:
        assert len(trading.recorder.insert_events(events)) == 30
        assert stored(postgres_url) == (
            [(e.originator_id, e.originator_version, e.topic, e.state) for e in events], 30)
    finally:
        trading.close()
