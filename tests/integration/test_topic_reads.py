"""Reading the events of a few topics (a start's positions, exits, accounts, funding plans)
costs what it finds on PostgreSQL, however the connection was used before.

Before the fix the library's prepared read, once PostgreSQL had planned it five times for
commoner topics, kept a generic plan that walks the log by position and filters: the
positions a start looked for (none) cost a walk of the whole log, 3.3 s on 1.7 million
events (``adapters/event_store/postgres.py``, ``ApplicationRecorder.select_notifications``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing import postgres
from eventsourcing.persistence import StoredEvent

from application.bootstrap import open_trading
from application.settings import _connect_kwargs, parse_database_url
from application.trading import Trading
from tests.conftest import POSTGRES_URL

EVENTS = 20_000
COMMON, SOMETIMES, RARE = ("tests.topic_reads:Noted", "tests.topic_reads:Marked",
                           "tests.topic_reads:Found")


def open_one_session(postgres_url: str) -> Trading:
    """One connection in the pool: every read below runs on the same PostgreSQL session,
    as a long-running server's reads do on each of its pooled connections."""
    return open_trading(f"{postgres_url}&pool_size=1&max_overflow=0")


@pytest.fixture
def trading(postgres_url: str) -> Iterator[Trading]:
    trading = open_one_session(postgres_url)
    try:
        yield trading
    finally:
        trading.close()


@pytest.fixture(params=["fast path", "TRADETAPE_LIBRARY_PATHS=1", "another eventsourcing"])
def either_trading(request, postgres_url: str, monkeypatch) -> Iterator[Trading]:
    """The topic read ours (as shipped), or the library's own (the seam's switch, or a
    version the read was not written against)."""
    from application import library_seam

    if request.param.startswith("TRADETAPE"):
        monkeypatch.setenv(*request.param.split("="))
    elif request.param.startswith("another"):
        monkeypatch.setattr(library_seam, "installed_version", lambda: "9.6.0")
    trading = open_one_session(postgres_url)
    try:
        assert trading.recorder.fast_topic_reads == (request.param == "fast path")
        yield trading
    finally:
        trading.close()


def connect() -> psycopg.Connection:
    return psycopg.connect(**_connect_kwargs(parse_database_url(POSTGRES_URL).env),
                           autocommit=True)


def append_log(trading: Trading) -> list[uuid.UUID]:
    """``EVENTS`` events, one in ten of topic SOMETIMES, the rest COMMON, then two RARE
    ones at the very end (the ids of those two)."""
    topics = [SOMETIMES if i % 10 == 0 else COMMON for i in range(EVENTS)]
    events = [StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic=topic,
                          state=b'{"pad":"' + b"x" * 300 + b'"}') for topic in topics]
    rare = [StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic=RARE,
                        state=b"{}") for _ in range(2)]
    for start in range(0, EVENTS, 5000):
        trading.recorder.insert_events(events[start:start + 5000])
    trading.recorder.insert_events(rare)
    schema = trading.recorder.datastore.schema
    with connect() as conn:
        conn.execute(f'ANALYZE "{schema}".trading_events')
    return [event.originator_id for event in rare]


def rows_fetched(trading: Trading) -> int:
    """Rows of the events table PostgreSQL has fetched through an index so far (its
    statistics, flushed by the pool's one session first)."""
    datastore = trading.recorder.datastore
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
    with connect() as conn:
        ((fetched,),) = conn.execute(
            "SELECT coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE schemaname = %s "
            "AND relname = 'trading_events'", (datastore.schema,)).fetchall()
    return fetched


def test_a_read_of_rare_events_fetches_only_them_after_reads_of_commoner_ones(trading):
    rare = append_log(trading)
    recorder = trading.recorder
    for _ in range(6):  # five plans for a topic one event in ten has: the sixth is generic
        assert len(recorder.select_notifications(0, 1000, topics=[SOMETIMES],
                                                 inclusive_of_start=False)) == 1000
    before = rows_fetched(trading)
    found = recorder.select_notifications(0, 1000, topics=[RARE, "tests.topic_reads:None"],
                                          inclusive_of_start=False)
    fetched = rows_fetched(trading) - before
    assert [n.originator_id for n in found] == rare
    assert fetched < 100, f"{fetched} rows fetched to find 2 (the log walked)"


@pytest.mark.parametrize("start, stop, inclusive, topics, limit", [
    (None, None, True, [RARE], 10),
    (0, None, False, [SOMETIMES, RARE], 50),
    (1000, 5000, True, [SOMETIMES], 1000),
    (1000, 5000, False, [COMMON, SOMETIMES], 7),
    (19_990, None, False, [RARE, COMMON], 100),
    (5, 4, True, [COMMON], 10),
])
def test_a_topic_read_gives_the_rows_the_library_gives(either_trading, start, stop, inclusive,
                                                       topics, limit, monkeypatch):
    trading = either_trading
    append_log(trading)
    recorder = trading.recorder
    library_read = postgres.PostgresApplicationRecorder.select_notifications
    asked = []  # the reads that went the library's way
    monkeypatch.setattr(postgres.PostgresApplicationRecorder, "select_notifications",
                        lambda *a, **k: asked.append(1) or library_read(*a, **k))
    ours = recorder.select_notifications(start, limit, stop, topics,
                                         inclusive_of_start=inclusive)
    assert len(asked) == (0 if recorder.fast_topic_reads else 1)
    library = library_read(recorder, start, limit, stop, topics, inclusive_of_start=inclusive)
    assert ours == library
    assert all(n.topic in topics for n in ours)
