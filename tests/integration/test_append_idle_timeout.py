"""A heavy candle's append (120,000 events, ~50 MB at 10,000 bots) keeps its session while
its client is slow between statements: a process given a fraction of a core took longer
than the library's idle-in-transaction timeout (5 s) to send the INSERT, the server ended
the session, and the append was retried from the start, for minutes. The append now raises
that timeout for its own transaction; other transactions keep it."""

from __future__ import annotations

import time
import uuid

import psycopg
from eventsourcing.persistence import StoredEvent

from adapters.event_store.postgres import ApplicationRecorder
from application.bootstrap import open_trading
from application.settings import _connect_kwargs, parse_database_url

IDLE_TIMEOUT_S = "1"  # the library's setting, in whole seconds
SLOW_CLIENT_S = 1.5  # between the INSERT's answer and the seals: longer than that


class SlowClient(ApplicationRecorder):
    """A client that takes its time inside the append (as a loaded machine's does)."""

    def _inserted_ids(self, curs, expected):  # type: ignore[override]
        time.sleep(SLOW_CLIENT_S)
        return super()._inserted_ids(curs, expected)


def events(n: int) -> list[StoredEvent]:
    bot = uuid.uuid4()
    return [StoredEvent(originator_id=bot, originator_version=v, topic="tests:Bot.Noted",
                        state=b'{"v":%d}' % v) for v in range(1, n + 1)]


def test_an_append_with_a_slow_client_is_stored_once_and_the_timeout_stays_for_others(
    postgres_url, monkeypatch
):
    monkeypatch.setenv("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", IDLE_TIMEOUT_S)
    trading = open_trading(postgres_url)
    try:
        recorder = trading.recorder
        recorder.__class__ = SlowClient
        began = time.perf_counter()
        ids = recorder.insert_events(events(500))
        took = time.perf_counter() - began
        assert len(ids) == 500 and ids == list(range(ids[0], ids[0] + 500))
        assert took < 2 * SLOW_CLIENT_S, f"retried: {took:.1f} s"  # not ended and retried
        schema = parse_database_url(postgres_url).env["POSTGRES_SCHEMA"]
        with psycopg.connect(**_connect_kwargs(parse_database_url(postgres_url).env)) as conn:
            ((stored, seals),) = conn.execute(
                f'SELECT (SELECT count(*) FROM "{schema}".trading_events WHERE topic = '
                f"'tests:Bot.Noted'), (SELECT count(*) FROM \"{schema}\".event_seals)"
            ).fetchall()
        assert stored == 500 and seals >= 500
        # Any other transaction of the store is still ended past the library's timeout
        with recorder.datastore.get_connection() as conn:
            (row,) = conn.execute("SELECT current_setting("
                                  "'idle_in_transaction_session_timeout') AS t").fetchall()
        assert row["t"] == "1s"
    finally:
        trading.close()
