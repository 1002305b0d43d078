"""Reading the application's log in pages, as plain tuples.

``(position, originator id as canonical text, version, topic, stored state, recorded)``: the
same rows, in the same order, as the library's ``select_notifications`` (a test holds them
equal), read with one query per page on the view store's own connection (PostgreSQL schema, or a
SQLite view store opened on the event file) or, for views in a file of their own, on the
application's connection, instead of one Notification and one UUID object per row. ``recorded`` is
when the row was recorded (ISO 8601 text in UTC, see ``adapters.event_store.recorded_time``),
None for rows recorded before that was kept and for logs read through the library (the
``memory`` store, POPO).

Reading the library's events table by hand is a fast path of ``application/library_seam.py``
(``log_reads``). With it off (``TRADETAPE_LIBRARY_PATHS=1``) the rows come from the library's
own ``select_notifications``, and only their recorded times, a column of ours the library
never reads back, from one query of that column by position range: the same rows either way
(a test holds them equal), so time travel's views and the audit's ``recorded_at`` do not
change with the switch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.application import Application

from application.library_seam import LOG_READS, fast_path
from projections.store import PostgresViewStore, SQLiteViewStore, ViewStore

LogRow = tuple[int, str, int, str, bytes, str | None]
RECORDED_AT = "recorded_at"  # the events table's column (adapters.event_store.recorded_time)
# PostgreSQL's timestamptz as the text SQLite keeps: what the views store (also read by
# ``audit_sql``: the same text in both audit paths).
PG_RECORDED = ("to_char(recorded_at AT TIME ZONE 'UTC', "
               "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")


def uuid_text(hex_or_text: str) -> str:
    h = hex_or_text
    if len(h) != 32:
        return h
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class LogReader:
    def __init__(self, app: Application, store: ViewStore):
        self.app, self.store = app, store
        recorder = app.recorder
        table = getattr(recorder, "events_table_name", None)
        self.sql: str | None = None
        kept = getattr(recorder, "keeps_recorded_time", False)
        self.via_recorder = False
        # The library's read, with the recorded times beside it (None: not kept).
        self.recorded: RecordedColumn | None = None
        if not fast_path(LOG_READS):
            self.recorded = RecordedColumn(recorder, table) if kept and table else None
            return
        if isinstance(store, PostgresViewStore) and table and _same_pg(recorder, store):
            recorded = PG_RECORDED if kept else "NULL"
            self.sql = (f"SELECT notification_id, originator_id::text, originator_version, "
                        f"topic, state, {recorded} FROM {store.q(table)} "
                        f"WHERE notification_id > %s {{stop}}ORDER BY notification_id LIMIT %s")
            self.stop_sql = "AND notification_id <= %s "
        elif isinstance(store, SQLiteViewStore) and table and _same_sqlite(recorder, store):
            recorded = RECORDED_AT if kept else "NULL"
            self.sql = (f"SELECT rowid, originator_id, originator_version, topic, state, "
                        f"{recorded} FROM {store.q(table)} WHERE rowid > ? {{stop}}"
                        f"ORDER BY rowid LIMIT ?")
            self.stop_sql = "AND rowid <= ? "
        if self.sql is None and kept and table:
            # Views elsewhere (time travel's in-memory view, a copy being checked): the same
            # rows with their recorded time, on the application's own connection, so the
            # facts are the same whichever view store reads them.
            self.via_recorder = True
            schema = getattr(recorder.datastore, "schema", None)
            if schema is None:
                self.sql = (f"SELECT rowid AS p, originator_id AS o, originator_version AS v, "
                            f"topic AS t, state AS s, {RECORDED_AT} AS r FROM {table} "
                            f"WHERE rowid > ? {{stop}}ORDER BY rowid LIMIT ?")
                self.stop_sql = "AND rowid <= ? "
            else:
                self.sql = (f"SELECT notification_id AS p, originator_id::text AS o, "
                            f"originator_version AS v, topic AS t, state AS s, "
                            f"{PG_RECORDED} AS r FROM \"{schema}\".\"{table}\" "
                            f"WHERE notification_id > %s {{stop}}ORDER BY notification_id "
                            f"LIMIT %s")
                self.stop_sql = "AND notification_id <= %s "

    def page(self, after: int, limit: int, stop: int | None = None) -> Sequence[LogRow]:
        if self.via_recorder:
            return self._recorder_page(after, limit, stop)
        if self.sql is None:
            return self._library_page(after, limit, stop)
        params: list[Any] = [after] if stop is None else [after, stop]
        params.append(limit)
        sql = self.sql.format(stop="" if stop is None else self.stop_sql)
        if isinstance(self.store, PostgresViewStore):
            return self.store.query_binary(sql, params)
        rows = self.store.query(sql, params)
        if isinstance(self.store, SQLiteViewStore):
            return [(r[0], uuid_text(r[1]), r[2], r[3], r[4], r[5]) for r in rows]
        return rows

    def _library_page(self, after: int, limit: int, stop: int | None) -> list[LogRow]:
        notifications = self.app.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False)
        times: dict[int, str | None] = {}
        if self.recorded is not None and notifications:
            times = self.recorded.between(after, notifications[-1].id)
        return [(n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state),
                 times.get(n.id)) for n in notifications]

    def _recorder_page(self, after: int, limit: int, stop: int | None) -> list[LogRow]:
        params: list[Any] = [after] if stop is None else [after, stop]
        params.append(limit)
        sql = self.sql.format(stop="" if stop is None else self.stop_sql)  # type: ignore[union-attr]
        with self.app.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [(r["p"], uuid_text(str(r["o"])), r["v"], r["t"], bytes(r["s"]), r["r"])
                for r in rows]

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0


class RecordedColumn:
    """The ``recorded_at`` of a range of positions, read on the application's own connection:
    what the library's ``select_notifications`` leaves out (the column is ours; the library
    neither writes nor reads it: ``adapters.event_store.recorded_time``)."""

    def __init__(self, recorder: Any, table: str):
        self.datastore = recorder.datastore
        schema = getattr(self.datastore, "schema", None)
        if schema is None:  # SQLite
            self.sql = (f"SELECT rowid AS p, {RECORDED_AT} AS r FROM {table} "
                        f"WHERE rowid > ? AND rowid <= ?")
        else:
            self.sql = (f"SELECT notification_id AS p, {PG_RECORDED} AS r "
                        f"FROM \"{schema}\".\"{table}\" "
                        f"WHERE notification_id > %s AND notification_id <= %s")

    def between(self, after: int, last: int) -> dict[int, str | None]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self.sql, [after, last])
            return {row["p"]: row["r"] for row in cursor.fetchall()}


class RecordedTimes:
    """When the events of ``app``'s log were recorded, asked of the events table through the
    application's own recorder (whatever view store is in use: time travel replays into an
    in-memory one). A store that keeps no recorded time (the memory store, POPO) answers as
    if every event had been recorded before recorded times were kept."""

    def __init__(self, app: Application):
        recorder = app.recorder
        self.datastore = getattr(recorder, "datastore", None)
        self.kept = bool(getattr(recorder, "keeps_recorded_time", False))
        self.app, self.table = app, getattr(recorder, "events_table_name", None)

    def by(self, moment: datetime) -> tuple[int, int]:
        """``(last position recorded at or before moment, last position recorded before
        recorded times were kept)``, each 0 when there is none. The first is the end of the
        log as it stood at ``moment``: rows without a recorded time all come before it."""
        if not self.kept:
            return 0, self.app.recorder.max_notification_id() or 0
        schema = getattr(self.datastore, "schema", None)
        if schema is None:  # SQLite
            table, key, param = self.table, "rowid", recorded_text(moment)
            sql = _RECORDED_BY.format(table=table, key=key, p="?")
        else:
            table, key, param = f'"{schema}"."{self.table}"', "notification_id", moment
            sql = _RECORDED_BY.format(table=table, key=key, p="%s")
        with self.datastore.transaction(commit=False) as cursor:  # type: ignore[union-attr]
            cursor.execute(sql, [param])
            row = cursor.fetchone()
        return row["recorded"] or 0, row["legacy"] or 0


_RECORDED_BY = (f"SELECT (SELECT MAX({{key}}) FROM {{table}} WHERE {RECORDED_AT} <= {{p}}) "
                f"AS recorded, (SELECT MAX({{key}}) FROM {{table}} WHERE {RECORDED_AT} IS NULL) "
                f"AS legacy")


def recorded_text(moment: datetime) -> str:
    """``moment`` as the fixed-width text recorded times are kept as (comparable as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class Pages:
    """The log's pages after ``after`` (up to ``stop``), one query each."""

    def __init__(self, reader: LogReader, after: int, limit: int, stop: int | None):
        self.reader, self.after, self.limit, self.stop = reader, after, limit, stop

    def __iter__(self) -> Iterator[Sequence[LogRow]]:
        after = self.after
        while page := self.reader.page(after, self.limit, self.stop):
            yield page
            after = page[-1][0]


_NOTHING = object()


class ReadAhead:
    """The log's pages as :class:`Pages` gives them, the next one read on a thread and a
    connection of its own while the caller works on the current one: the database's work and
    the driver's wait (which releases the GIL) overlap with the projections' Python. Only for
    a reader on its own connection (a view store that can clone); ``close`` stops it."""

    def __init__(self, reader: LogReader, after: int, limit: int, stop: int | None,
                 depth: int = 2, join: bool = False):
        """``join``: pages read meanwhile come joined (see ``__iter__``)."""
        self.most = 2 * limit if join else 0
        self.store = reader.store.clone()
        self.pages = Pages(LogReader(reader.app, self.store), after, limit, stop)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for page in self.pages:
                if not self._put(page):
                    return
            self._put(None)
        except BaseException as error:  # handed to the reading thread
            self._put(error)

    def _put(self, item: Any) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Sequence[LogRow]]:
        """The pages; with ``join``, each joined with those read meanwhile while the batch
        stays within twice the page size: each batch costs a part that does not grow with its events
        (``runner.CATCH_UP_BATCH``), and near the head of a growing log the pages read
        while one batch is applied are many and small."""
        held: Any = _NOTHING  # taken from the queue but not joined: next
        while True:
            item = self._queue.get() if held is _NOTHING else held
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            batch, held = item, _NOTHING
            while len(batch) < self.most:
                try:
                    held = self._queue.get_nowait()
                except queue.Empty:
                    break
                if (held is None or isinstance(held, BaseException)
                        or len(batch) + len(held) > self.most):
                    break
                batch, held = [*batch, *held], _NOTHING
            yield batch

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()
        self.store.close()


def read_ahead_possible(reader: LogReader) -> bool:
    """Whether the log can be read on another connection: the reader's own query on a
    view store that can clone (a SQLite file, a PostgreSQL schema)."""
    return reader.sql is not None and not reader.via_recorder and reader.store.can_clone


def _same_sqlite(recorder: Any, store: SQLiteViewStore) -> bool:
    """Whether the views are in the event store's own file (a server's views have a file of
    their own, ``Database.views_path``; a store opened on the event file has not)."""
    name = getattr(getattr(recorder, "datastore", None), "db_name", None)
    if store.path is None or not isinstance(name, str) or ":memory:" in name:
        return False
    return Path(name).resolve() == store.path.resolve()


def _same_pg(recorder: Any, store: PostgresViewStore) -> bool:
    datastore = getattr(recorder, "datastore", None)
    return getattr(datastore, "schema", None) == store.schema
