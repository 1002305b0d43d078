"""An append's columns and seals go to PostgreSQL as binary arrays built by our own code
(``adapters/event_store/dumped.py``, ``sealing.batch_sealer``): whatever an event holds, it
is stored as given, and its seal is the one the audit key makes for it."""

from __future__ import annotations

import uuid

import psycopg
from eventsourcing.persistence import StoredEvent

from adapters.event_store.sealing import check_seals
from application.bootstrap import open_trading
from application.settings import _connect_kwargs, parse_database_url


def stored(url: str) -> list[tuple]:
    env = parse_database_url(url).env
    with psycopg.connect(**_connect_kwargs(env)) as conn:
        rows = conn.execute(
            f'SELECT originator_id, originator_version, topic, state FROM '
            f'"{env["POSTGRES_SCHEMA"]}".trading_events ORDER BY notification_id').fetchall()
    return [(i, v, t, bytes(s)) for i, v, t, s in rows]


def test_every_kind_of_value_is_stored_as_given_and_sealed(postgres_url):
    trading = open_trading(postgres_url)
    try:
        first, second = uuid.uuid4(), uuid.uuid4()
        events = [
            StoredEvent(first, 1, "tests.arrays:Bot.Noted", b'{"a":1}'),
            StoredEvent(first, 2, "tests.arrays:Événement.Noté", "{\"é\":\"😀\"}".encode()),
            StoredEvent(second, 2**40, "tests.arrays:Bot.Noted", b""),  # a long aggregate
            StoredEvent(second, 2**40 + 1, "", bytes(range(256)) * 40),  # NULs, 10 kB
        ]
        positions = trading.recorder.insert_events(events)
        assert len(positions) == len(events)
        assert stored(postgres_url) == [
            (e.originator_id, e.originator_version, e.topic, e.state) for e in events]
        report = check_seals(trading.recorder, trading.recorder.sealing_key(), max(positions))
        assert report.intact and report.checked == len(events)
    finally:
        trading.close()
