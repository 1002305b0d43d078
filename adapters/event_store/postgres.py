"""The library's PostgreSQL event store, creating its tables one process at a time.

Every time an application is constructed, the library's recorders create what they need:
a composite type, the events table and its index (all ``IF NOT EXISTS``) and a function
(``CREATE OR REPLACE``). Two processes doing so at once fail: on a fresh schema with a unique
violation on the catalog (``pg_type``, ``pg_class``), and even on a ready one with "tuple
concurrently updated" (both replacing the same function). Here each recorder's
``create_table`` runs while holding the DDL advisory lock (``application.settings``), taken
in a transaction of a connection of its own: the library's statements, unchanged, run on
its pool's connections meanwhile. The lock ends with that transaction (or the process).

The application's events table also gets a ``recorded_at timestamptz`` column, filled by the
database at insert (``DEFAULT clock_timestamp()``; see ``adapters.event_store.recorded_time``):
the library's INSERT names its columns, so it needs no change. A table made by an earlier
version gains the column without a default first (its rows keep NULL, "recorded before this
version", instead of all being stamped with the time of the upgrade), then the default.

Every event is sealed in the transaction that stores it: ``event_seals`` (see
``adapters/event_store/sealing.py``). An engine worker's appends are fenced in that same
transaction: the bots' leases must still be its own (``adapters/event_store/leases.py``).
An append sends its statements one after another, not in the library's psycopg pipeline,
which could hang for good on an INSERT of many MB (``ApplicationRecorder._append``;
``TRADETAPE_LIBRARY_APPEND=1`` switches back to the library's own append).
The events table gets an index on ``(topic, notification_id)``: reading the events of a
few topics costs what it finds, planned for the topics asked (``topic_reads.py``).
The append, the topic reads and the many-ids reads are fast paths through the library's
internals: ``application.library_seam`` says whether each may run (``TRADETAPE_LIBRARY_PATHS
=1`` or another eventsourcing version: the library's own paths).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import postgres
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.utils import retry
from psycopg import sql
from psycopg.rows import tuple_row

from adapters.event_store.batch_put import BatchEventStore
from adapters.event_store.dumped import (
    accept_dumped,
    ascii_texts,
    dump_columns,
    repeated_text,
)
from adapters.event_store.exposure_stamps import CHANGED_MARK, changed, check_stamps
from adapters.event_store.leases import LOST_MARK, check_fence, lost_leases
from adapters.event_store.recorded_time import POSTGRES_NOW, RECORDED_AT
from adapters.event_store.sealing import SEALS_TABLE, Sealing, key_source
from adapters.event_store.topic_reads import TopicReads
from application.library_seam import APPEND, STORED_EVENTS, TOPIC_READS, fast_path
from application.settings import lock_ddl
from domain.errors import ExposureChangedError

# seconds an append's session may wait on its client (sending the INSERT) before the server
# ends it; other transactions keep the library's (see ApplicationRecorder._append)
APPEND_IDLE_TIMEOUT = 60.0
SEAL_WIDTH = 64  # a seal's text: an HMAC-SHA256 in hex


@contextmanager
def ddl_lock(datastore: postgres.PostgresDatastore) -> Iterator[None]:
    """Hold the DDL lock of ``datastore``'s schema until the block ends."""
    pool = datastore.pool
    kwargs = {k: v for k, v in dict(pool.kwargs).items() if k != "row_factory"}
    if pool.get_password_func is not None:
        kwargs["password"] = pool.get_password_func()
    with (
        psycopg.connect(**kwargs, autocommit=True, connect_timeout=max(1, int(pool.timeout)))
        as conn,
        conn.transaction(),
    ):
        lock_ddl(conn, datastore.schema)
        yield


class _SerialCreation:
    datastore: postgres.PostgresDatastore

    def create_table(self) -> None:
        with ddl_lock(self.datastore):
            super().create_table()  # type: ignore[misc]


class _ManyReads:
    """The stored events of many aggregates in one query (``application.bulk_load``): a
    restart loads ten thousand bots, their deals and orders in a few round trips instead of
    one each. Reads the library's own table with its own columns (eventsourcing 9.5.6)."""

    datastore: postgres.PostgresDatastore
    events_table_name: str

    def select_events_of(self, ids: Sequence[Any], after: Sequence[int]) -> list[Any]:
        """Every event of ``ids[i]`` with a version above ``after[i]``, by id then version."""
        # LATERAL: one index lookup per id (a join would walk the whole primary key)
        return self._stored(sql.SQL(
            "SELECT e.* FROM unnest(%s::text::uuid[], %s::text::bigint[]) AS a(id, after) "
            "CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state "
            "FROM {} WHERE originator_id = a.id AND originator_version > a.after "
            "ORDER BY originator_version) e"), (_array_text(ids), _array_text(after)))

    def select_last_of(self, ids: Sequence[Any]) -> list[Any]:
        """The newest event (a snapshot, in a snapshots table) of each of ``ids``."""
        return self._stored(sql.SQL(
            "SELECT e.* FROM unnest(%s::uuid[]) AS a(id) CROSS JOIN LATERAL (SELECT "
            "originator_id, originator_version, topic, state FROM {} WHERE originator_id = "
            "a.id ORDER BY originator_version DESC LIMIT 1) e"), (_array_text(ids),))

    def replace_events(self, stored_events: Sequence[Any]) -> None:
        """Insert each of ``stored_events`` (snapshots, in a snapshots table), in place of
        the row at its id and version where there is one: a snapshot taken by other code
        or in an older format, which would otherwise keep its newer twin out until the
        aggregate moves on (a start after every upgrade replaying every idle aggregate)."""
        table = sql.Identifier(self.datastore.schema, self.events_table_name)
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(sql.SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (originator_id, originator_version) "
                "DO UPDATE SET topic = EXCLUDED.topic, state = EXCLUDED.state").format(table),
                [(e.originator_id, e.originator_version, e.topic, e.state)
                 for e in stored_events])

    def _stored(self, statement: Any, params: tuple) -> list[Any]:
        from eventsourcing.persistence import StoredEvent

        table = sql.Identifier(self.datastore.schema, self.events_table_name)
        # Tuples in binary (the store's cursors make a dict of every row, and read bytea
        # as hex text): a third of what turning 70,000 rows into events cost.
        with (self.datastore.get_connection() as conn,
              conn.cursor(row_factory=tuple_row, binary=True) as curs):
            with conn.transaction():
                # The planner guesses thousands of rows per id and compiles the query (JIT):
                # ~0.4 s for what the index answers in milliseconds.
                curs.execute("SET LOCAL jit = off")
                curs.execute(statement.format(table), params)
            # The rows made into events once the transaction has ended. WHY: the result is
            # all here already, but turning 10,000 bots' events into objects inside it took
            # longer than the library's idle-in-transaction timeout (5 s) on a loaded
            # machine: the session was ended, the read failed, the connection went back
            # to the pool dead (an engine's rebuild after a refused append, at 10,000 bots)
            rows = curs.fetchall()
        return [StoredEvent(originator_id=oid, originator_version=version, topic=topic,
                            state=bytes(state)) for oid, version, topic, state in rows]


def _array_text(values: Sequence[Any]) -> str:
    """``values`` (UUIDs or integers) as one PostgreSQL array literal, cast by the query.
    WHY: psycopg dumps a list parameter an element at a time in Python (a tenth of loading
    10,000 bots' snapshots went there); a UUID's ``hex`` and an int's text are cheap."""
    return "{" + ",".join([v.hex if isinstance(v, UUID) else str(int(v)) for v in values]) + "}"


class AggregateRecorder(_ManyReads, _SerialCreation, postgres.PostgresAggregateRecorder):
    pass


class _RecordedTime(_SerialCreation):
    events_table_name: str
    keeps_recorded_time = True  # what projections.reader.RecordedTimes asks

    def create_table(self) -> None:
        with ddl_lock(self.datastore):
            super(_SerialCreation, self).create_table()  # type: ignore[misc]
            self._add_recorded_at()

    def _add_recorded_at(self) -> None:
        from psycopg.sql import SQL, Identifier, Literal

        schema, table = self.datastore.schema, self.events_table_name
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SELECT column_default FROM information_schema.columns WHERE "
                             "table_schema = {} AND table_name = {} AND column_name = {}")
                         .format(Literal(schema), Literal(table), Literal(RECORDED_AT)))
            found = curs.fetchall()
            if found and found[0]["column_default"]:
                return  # ready: no DDL (and no table lock) on every start
            target = SQL("{}.{}").format(Identifier(schema), Identifier(table))
            if not found:
                curs.execute(SQL("ALTER TABLE {} ADD COLUMN {} timestamptz").format(
                    target, Identifier(RECORDED_AT)))
            curs.execute(SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT " + POSTGRES_NOW)
                         .format(target, Identifier(RECORDED_AT)))


class ApplicationRecorder(Sealing, TopicReads, _ManyReads, _RecordedTime,
                          postgres.PostgresApplicationRecorder):
    """Seals every event in the transaction that stores it (the library's ``_insert_events``
    hook runs first in that transaction; see ``adapters/event_store/sealing.py``)."""

    def __init__(self, datastore: postgres.PostgresDatastore, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        # The fast paths as the process's environment says (the factory then asks the
        # application's): the library's own paths when the seam says no.
        self.library_append = not fast_path(APPEND)
        self.fast_topic_reads = fast_path(TOPIC_READS)
        self.seals = sql.Identifier(datastore.schema, SEALS_TABLE)
        self.sql_create_statements.append(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (originator_id uuid, originator_version bigint, "
            "key_id text NOT NULL, seal text NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))").format(self.seals))
        # Reads of a few kinds of event (a start's: accounts, plans, positions, risk) find
        # them through this index instead of walking a log of millions.
        self.sql_create_statements.append(sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} (topic, notification_id)").format(
            sql.Identifier(f"{self.events_table_name}_topic_idx"),
            sql.Identifier(datastore.schema, self.events_table_name)))

    # The fence of the append under way on this thread, if any: set by the composition
    # root for engine workers (``application.leases.current_fence``).
    fence_source: Any = None
    # The off switch (``TRADETAPE_LIBRARY_APPEND=1``, or the seam's): the library's own
    # append, all its statements in one psycopg pipeline. Kept to compare bytes with; see
    # ``_append``.
    library_append = False
    _insert_columns_sql: Any = None  # made at the first append

    def insert_events(self, stored_events: Sequence[Any], **kwargs: Any) -> Any:
        with self._fence_errors():
            if self.library_append or self.datastore.enable_db_functions:
                return super().insert_events(stored_events, **kwargs)
            return self._append(stored_events, **kwargs)

    def prepare_insert(self, stored_events: Sequence[Any]) -> Any:
        """What ``_append`` computes before its transaction, computed now (on the calling
        thread), for ``insert_prepared`` to send later, maybe from another thread; None
        where the library's own append runs (``insert_events`` then). WHY: the appends a
        heavy candle sends ahead (``application/appends_ahead.py``) are made on the loop's
        thread, which holds the interpreter anyway, and the appending thread only waits
        on the database: making them there, it waited for the interpreter instead while
        the loop decided on, and the database for it."""
        if self.library_append or self.datastore.enable_db_functions or not stored_events:
            return None
        return self._parameters(stored_events)

    def insert_prepared(self, stored_events: Sequence[Any], prepared: Any) -> Any:
        """``insert_events`` of ``stored_events`` whose parameters ``prepare_insert`` made."""
        if prepared is None:
            return self.insert_events(stored_events)
        with self._fence_errors():
            return self._send(prepared, len(stored_events))

    @contextmanager
    def _fence_errors(self) -> Iterator[None]:
        """An append refused by its fence said as what it is: a lease lost (with the bots),
        or a user's exposure moved on."""
        try:
            yield
        except Exception as error:
            fence = self.fence_source() if self.fence_source is not None else None
            if isinstance(error, ExposureChangedError):
                raise  # (a hold waited out too long: said as it is)
            if fence is not None and fence.stamps and CHANGED_MARK in str(error):
                raise changed(sorted(fence.stamps)) from None
            if fence is None or LOST_MARK not in str(error):
                raise
            with self.datastore.get_connection() as conn:  # (the append's was rolled back)
                raise lost_leases(conn, self.datastore.schema, fence) from None

    def _append(self, stored_events: Sequence[Any], **kwargs: Any) -> list[int] | None:
        """The library's append (eventsourcing 9.5.6 ``PostgresApplicationRecorder.
        insert_events``): in one transaction the fence, the table lock, NOTIFY, the events'
        INSERT (its own statements) and the seals, but each statement sent and answered
        before the next instead of all in a psycopg pipeline (``_send``).

        Everything an append computes, computed before its transaction begins. WHY: the
        library ends a session idle in a transaction for 5 s (its default
        POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT), and the table lock is held
        meanwhile; the seals of 120,000 events (10,000 bots' first close) took longer than
        that on a loaded machine, so that append was cut off and retried for good. Their
        parameters too, dumped to bytes (``adapters/event_store/dumped.py``)."""
        parameters = self._parameters(stored_events) if stored_events else None
        return self._send(parameters, len(stored_events))

    def _parameters(self, stored_events: Sequence[Any]) -> tuple[list, list | None]:
        """The INSERT's columns and the seals' (None: this store seals nothing), in binary."""
        columns = dump_columns(([s.originator_id for s in stored_events],
                                [s.originator_version for s in stored_events],
                                [s.topic for s in stored_events],
                                [s.state for s in stored_events]))
        return columns, self._dumped_seals(stored_events, columns)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _send(self, parameters: tuple[list, list | None] | None, count: int
              ) -> list[int] | None:
        """``_append``'s transaction, its ``parameters`` made (None: no events, the fence
        checked alone).

        WHY one statement at a time: in a pipeline, psycopg (3.3.9, C and Python alike)
        stops sending at the sync once its queue is empty even when the socket took only
        part of a large message; it then waits for a result while PostgreSQL waits for
        the rest of the message (``ClientRead``): the append never returns. That happens
        with an INSERT of tens of MB (27,000 events of a 1,000-bot candle: 12 MB), sooner
        when the table lock keeps the server from reading meanwhile (another worker
        appending). A plain ``execute`` sends the whole message before it waits. It costs
        round trips (BEGIN, fence, lock and NOTIFY, INSERT, seals, COMMIT: 6 instead of 2),
        well under a millisecond on the same host."""
        fence = self.fence_source() if self.fence_source is not None else None
        columns, seals = parameters if parameters is not None else (None, None)
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs:
            if fence is not None:  # an engine worker's append: its leases first (LEASE_LOST)
                check_fence(curs, self.datastore.schema, fence)
                check_stamps(curs, self.datastore.schema, fence)  # then the users' exposure
            if columns is None:
                return None
            accept_dumped(curs.adapters)
            # The library's lock timeout, table lock and NOTIFY in one round trip (no
            # parameters: one simple query), then its INSERT
            curs.execute(sql.SQL("; ").join(
                [*self._idle_timeout_statements(), *self.lock_table_statements,
                 sql.SQL("NOTIFY {}").format(sql.Identifier(self.channel_name))]))
            curs.execute(self._insert_columns_statement(), columns)
            ids = self._inserted_ids(curs, count)
            if seals:
                curs.execute(self._seals_statement("%b"), seals)
            return ids

    def _idle_timeout_statements(self) -> list[sql.Composable]:
        """The idle-in-transaction timeout raised to ``APPEND_IDLE_TIMEOUT`` for this
        append alone. WHY: while the server reads a statement's message it counts the
        session as idle in its transaction; a heavy candle's INSERT (120,000 events,
        ~50 MB at 10,000 bots) sent by a process a loaded machine gives a fraction of a
        core took longer than the library's 5 s: the session was ended and the whole
        append retried, again and again (minutes lost on the first close). The shorter
        timeout stays for every other transaction; a client that hangs in an append
        holds the table lock for this long at most."""
        current = self.datastore.idle_in_transaction_session_timeout
        if not current or current >= APPEND_IDLE_TIMEOUT:
            return []
        return [sql.SQL("SET LOCAL idle_in_transaction_session_timeout = '{}s'").format(
            sql.SQL(str(int(APPEND_IDLE_TIMEOUT))))]

    @staticmethod
    def _inserted_ids(curs: Any, expected: int) -> list[int]:
        """The positions the INSERT gave, in order: one row of one array (a row each, as
        dicts, cost a heavy candle ~1 µs an event while the table lock was held)."""
        row = curs.fetchone()
        ids = list(row["ids"]) if row is not None and row["ids"] is not None else []
        if len(ids) != expected:
            from eventsourcing.persistence import ProgrammingError

            raise ProgrammingError(f"Couldn't get all notification IDs (got {len(ids)}, "
                                   f"expected {expected})")
        return ids

    def _insert_columns_statement(self) -> sql.Composable:
        """The library's INSERT (same table, columns, order and RETURNING), its rows sent as
        one array per column in binary instead of one array of its composite type in text.

        WHY: psycopg dumps a composite array as text, escaping every field of every event
        with a regular expression: a third of a heavy step's processor time (12,000 events
        at 1,000 bots' first close: ~0.5 s of 1.2 s). Binary uuid, bigint, text and bytea
        arrays are copied as they are. ``unnest`` of several arrays yields their elements
        side by side in order, as the composite array's did, so the events get the same
        positions in the log."""
        if self._insert_columns_sql is None:
            # Positions ascend in the rows' order (one inserter at a time: the table lock)
            self._insert_columns_sql = sql.SQL(
                "WITH inserted AS (INSERT INTO {} (originator_id, originator_version, topic, "
                "state) SELECT * FROM unnest(%b::{}[], %b::bigint[], %b::text[], "
                "%b::bytea[]) RETURNING notification_id) "
                "SELECT array_agg(notification_id ORDER BY notification_id) AS ids "
                "FROM inserted").format(
                sql.Identifier(self.datastore.schema, self.events_table_name),
                sql.SQL(self.datastore.originator_id_type))
        return self._insert_columns_sql

    def _insert_events(self, curs: Any, stored_events: Sequence[Any], **kwargs: Any) -> None:
        """The library's hook, first in its pipelined append (the off switch only)."""
        fence = self.fence_source() if self.fence_source is not None else None
        if fence is not None:  # an engine worker's append: its leases first (LEASE_LOST)
            check_fence(curs, self.datastore.schema, fence)
            check_stamps(curs, self.datastore.schema, fence)  # then the users' exposure
        super()._insert_events(curs, stored_events, **kwargs)
        self._seal(curs, stored_events)

    def _seal(self, curs: Any, stored_events: Sequence[Any]) -> None:
        """The seals, sent in text as always (the off switch: the library's pipeline)."""
        seals = self._seal_columns(stored_events)
        if seals:
            curs.execute(self._seals_statement("%s"), seals)

    def _dumped_seals(self, stored_events: Sequence[Any], columns: list[Any]) -> list | None:
        """The seals' four columns in binary (None: this store seals nothing): the events'
        own id and version arrays sent again (the same values), the key's fingerprint
        repeated, and the seals. WHY: making the seals' rows and dumping all four columns
        anew was ~2 us an event of a heavy candle's processor time."""
        sealed = self.seal_texts(stored_events)
        if sealed is None:
            return None
        fingerprint, texts = sealed
        hexes = ascii_texts(texts, SEAL_WIDTH) or dump_columns([texts])[0]
        return [columns[0], columns[1], repeated_text(fingerprint, len(texts)), hexes]

    def _seal_columns(self, stored_events: Sequence[Any]) -> list[list] | None:
        """The seals of ``stored_events`` as four columns (None: this store seals nothing)."""
        rows = self.seal_rows(stored_events, lambda oid: oid)
        return [list(column) for column in zip(*rows, strict=True)] if rows else None

    def _seals_statement(self, mark: str) -> sql.Composable:
        """One statement (an executemany is a pipeline of its own in psycopg). A seal left
        behind by a deleted event must not outlive a new one; if the events' insert fails,
        the transaction takes this back too. ``mark``: ``%b`` sends the columns in binary
        (our append), ``%s`` in text."""
        return sql.SQL(
            f"INSERT INTO {{}} SELECT * FROM unnest({mark}::uuid[], {mark}::bigint[], "
            f"{mark}::text[], {mark}::text[]) ON CONFLICT (originator_id, "
            "originator_version) DO UPDATE SET key_id = excluded.key_id, "
            "seal = excluded.seal").format(self.seals)

    def sealed_log_page(self, after: int, stop: int, limit: int) -> list[tuple]:
        events = sql.Identifier(self.datastore.schema, self.events_table_name)
        return self._select(sql.SQL(
            "SELECT e.notification_id, e.originator_id::text, e.originator_version, e.topic, "
            "e.state, s.key_id, s.seal FROM {} e LEFT JOIN {} s USING (originator_id, "
            "originator_version) WHERE e.notification_id > %s AND e.notification_id <= %s "
            "ORDER BY e.notification_id LIMIT %s").format(events, self.seals),
            (after, stop, limit))

    def orphan_seals(self, limit: int) -> list[tuple[str, int]]:
        events = sql.Identifier(self.datastore.schema, self.events_table_name)
        return self._select(sql.SQL(
            "SELECT s.originator_id::text, s.originator_version FROM {} s LEFT JOIN {} e "
            "USING (originator_id, originator_version) WHERE e.notification_id IS NULL "
            "LIMIT %s").format(self.seals, events), (limit,))

    def _select(self, statement: Any, params: tuple) -> list[tuple]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return [tuple(row.values()) for row in curs.fetchall()]


class TrackingRecorder(_SerialCreation, postgres.PostgresTrackingRecorder):
    pass


class ProcessRecorder(_RecordedTime, postgres.PostgresProcessRecorder):
    pass


class Factory(postgres.PostgresFactory):
    """``PERSISTENCE_MODULE=adapters.event_store.postgres``: the library's factory with the
    recorders above. The audit key: the environment's ``TRADETAPE_AUDIT_KEY``, else the file
    ``TRADETAPE_AUDIT_KEY_FILE`` (the composition root names one per database)."""

    aggregate_recorder_class = AggregateRecorder
    application_recorder_class = ApplicationRecorder
    tracking_recorder_class = TrackingRecorder
    process_recorder_class = ProcessRecorder

    def application_recorder(self) -> Any:
        recorder = super().application_recorder()
        recorder.key_source = key_source(self.env, None)
        recorder.library_append = not fast_path(APPEND, self.env)
        recorder.fast_topic_reads = fast_path(TOPIC_READS, self.env)
        return recorder

    def event_store(self, mapper: Any = None, recorder: Any = None) -> Any:
        """A batch's events mapped and recorded as one (``batch_put.py``), unless the seam
        says no: the library's own ``EventStore``."""
        if not fast_path(STORED_EVENTS, self.env):
            return super().event_store(mapper=mapper, recorder=recorder)
        return BatchEventStore(mapper=mapper or self.mapper(),
                               recorder=recorder or self.application_recorder())
