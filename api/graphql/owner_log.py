"""The log's new events as the owner versions need them: position, aggregate id, version,
topic, and the stored state only where it names an owner.

Learning whose each new event is (``owner_versions.py``) needs an event's state only when
it says ``"owner_id"`` (a bot's, deal's or order's first event); the rest (an order's fills,
a deal's moves: nearly every event of a live run) are known by their aggregate. The
library's ``select_notifications`` reads every column of every row, the states included,
and makes a Notification and a UUID of each. Where the log can be read with SQL of ours (the
log reader's test: the views beside it, in the same PostgreSQL schema or SQLite file, else
the application's own connection, ``LogReader.via_recorder``) and states are stored as plain
JSON, one statement asks the database for the states that contain ``"owner_id"`` only, and
hands rows as plain tuples.

That statement reads eventsourcing's own events table, so it is a fast path of the library
seam (``application/library_seam.py``: ``owner_scan``): another library version,
``TRADETAPE_LIBRARY_PATHS=1`` or ``TRADETAPE_OWNER_SCAN_SQL=0``, a cipher or a compressor,
or the memory store read through the library instead. A test holds both ways to the same
rows (tests/api/test_owner_log.py).
"""

from __future__ import annotations

from typing import Any

from application.library_seam import OWNER_SCAN, OWNER_SCAN_ENV, fast_path
from projections.reader import LogReader, uuid_text
from projections.store import PostgresViewStore

SWITCH = OWNER_SCAN_ENV
OWNER_KEY = b'"owner_id"'  # what a state naming an owner holds (no upcaster adds one)
# (position, aggregate id as canonical text, its version, topic, state or None)
OwnerRow = tuple[int, str, int, str, bytes | None]


class OwnerLog:
    """``read(read_side, after, limit)``: the rows after ``after``, oldest first."""

    def __init__(self, trading: Any, store: Any):
        self.trading = trading
        self.sql: str | None = None
        self.firsts_sql: str | None = None  # see ``firsts`` (PostgreSQL, beside the views)
        mapper = trading.mapper  # stored states are plain JSON: their bytes can be searched
        self.plain = mapper.cipher is None and mapper.compressor is None
        if not fast_path(OWNER_SCAN) or not self.plain:
            return
        table = getattr(trading.recorder, "events_table_name", None)
        reader = LogReader(trading, store)
        if not table or reader.sql is None:
            return  # the memory store: only the library reads it
        self.beside = not reader.via_recorder  # else on the application's own connection
        schema = getattr(trading.recorder.datastore, "schema", None)
        if isinstance(store, PostgresViewStore) if self.beside else schema is not None:
            self.postgres = True
            name = store.q(table) if self.beside else f'"{schema}"."{table}"'
            self.sql = ("SELECT notification_id AS p, originator_id::text AS o, "
                        "originator_version AS v, topic AS t, "
                        "CASE WHEN position(%s::bytea IN state) > 0 THEN state END AS s "
                        f"FROM {name} WHERE notification_id > %s "
                        "ORDER BY notification_id LIMIT %s")
            if self.beside:  # the first event of many aggregates at once (primary key)
                # One probe of the key per aggregate, its first row alone. WHY: ``DISTINCT
                # ON`` over ``originator_id = ANY(...)`` read every event of every aggregate
                # asked about (a bot's whole history) and sorted them, in parallel workers:
                # after a heavy candle, thousands of aggregates the api had not met since
                # its start took 0.1 s a statement while every request waited for them
                # (pg_stat_activity sampled through ``bench_live.py``'s slow answers).
                self.firsts_sql = (
                    # (the ids as one text: a list is dumped element by element, each
                    # searched for what to quote: 0.8 µs an id of 5,000, against 0.01)
                    "SELECT f.* FROM unnest(string_to_array(%s, ',')::uuid[]) AS k(id) "
                    "CROSS JOIN LATERAL ("
                    "SELECT originator_id::text, originator_version, topic, state "
                    f"FROM {name} WHERE originator_id = k.id "
                    "ORDER BY originator_version LIMIT 1) f")
        else:
            self.postgres = False
            name = store.q(table) if self.beside else table
            self.sql = ("SELECT rowid AS p, originator_id AS o, originator_version AS v, "
                        "topic AS t, CASE WHEN instr(state, ?) > 0 THEN state END AS s "
                        f"FROM {name} WHERE rowid > ? ORDER BY rowid LIMIT ?")

    def read(self, read_side: Any, after: int, limit: int) -> list[OwnerRow]:
        """The rows after ``after``: beside the views on the read side's connection for
        the read version (``run_apart``), else on the application's."""
        if self.sql is None:
            return self.library_page(after, limit)
        if self.beside:
            return read_side.run_apart(self.page, after, limit)
        with self.trading.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(self.sql, [OWNER_KEY, after, limit])
            rows = cursor.fetchall()
        return [(r["p"], uuid_text(str(r["o"])), r["v"], r["t"],
                 None if r["s"] is None else bytes(r["s"])) for r in rows]

    def page(self, store: Any, after: int, limit: int) -> list[OwnerRow]:
        """The rows after ``after`` on ``store``, the views' connection beside the log."""
        assert self.sql is not None and self.beside
        if self.postgres:  # (psycopg gives a bytea as bytes: the rows are as they come)
            return store.query_binary(self.sql, [OWNER_KEY, after, limit])
        return [(r[0], uuid_text(r[1]), r[2], r[3], r[4])
                for r in store.query(self.sql, [OWNER_KEY, after, limit])]

    def firsts(self, read_side: Any, ids: list[str]) -> dict[str, OwnerRow] | None:
        """The first stored event of each aggregate of ``ids`` (those that have one), in
        one statement: (0, id, version, topic, state). None where the log cannot be read
        so (each is then read through the library, one statement each: after an api's
        start every aggregate already in the log is unknown to it, and the first step that
        touched thousands of them held its read version for seconds)."""
        if self.firsts_sql is None or not ids:
            return None
        rows = read_side.run_apart(lambda store: store.query_binary(
            self.firsts_sql, [",".join(ids)]))
        return {r[0]: (0, r[0], r[1], r[2], None if r[3] is None else bytes(r[3]))
                for r in rows}

    def library_page(self, after: int, limit: int) -> list[OwnerRow]:
        """The same rows through the library (every column read; a plain state that names
        no owner dropped here, a ciphered or compressed one kept: only decoding tells)."""
        page = self.trading.recorder.select_notifications(start=after, limit=limit,
                                                          inclusive_of_start=False)
        plain = self.plain
        return [(n.id, str(n.originator_id), n.originator_version, n.topic,
                 None if plain and isinstance(n.state, bytes) and OWNER_KEY not in n.state
                 else n.state) for n in page]
