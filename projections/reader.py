"""Reading the application's log in pages, as plain tuples.

``(position, originator id as canonical text, version, topic, stored state)``: the same rows,
in the same order, as the library's ``select_notifications`` (a test holds them equal), read
with one query per page on the view store's own connection (SQLite file, PostgreSQL schema)
instead of one Notification and one UUID object per row. The ``memory`` store (POPO) is read
through the library.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.application import Application

from projections.store import PostgresViewStore, SQLiteViewStore, ViewStore

LogRow = tuple[int, str, int, str, bytes]


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
        if isinstance(store, PostgresViewStore) and table and _same_pg(recorder, store):
            self.sql = (f"SELECT notification_id, originator_id::text, originator_version, "
                        f"topic, state FROM {store.q(table)} WHERE notification_id > %s "
                        f"{{stop}}ORDER BY notification_id LIMIT %s")
            self.stop_sql = "AND notification_id <= %s "
        elif isinstance(store, SQLiteViewStore) and store.path is not None and table:
            self.sql = (f"SELECT rowid, originator_id, originator_version, topic, state "
                        f"FROM {store.q(table)} WHERE rowid > ? {{stop}}ORDER BY rowid LIMIT ?")
            self.stop_sql = "AND rowid <= ? "

    def page(self, after: int, limit: int, stop: int | None = None) -> Sequence[LogRow]:
        if self.sql is None:
            return [(n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
                    for n in self.app.recorder.select_notifications(
                        start=after, limit=limit, stop=stop, inclusive_of_start=False)]
        params: list[Any] = [after] if stop is None else [after, stop]
        params.append(limit)
        sql = self.sql.format(stop="" if stop is None else self.stop_sql)
        rows = self.store.query(sql, params)
        if isinstance(self.store, SQLiteViewStore):
            return [(r[0], uuid_text(r[1]), r[2], r[3], r[4]) for r in rows]
        return rows

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0


class Pages:
    """The log's pages after ``after`` (up to ``stop``), one query each."""

    def __init__(self, reader: LogReader, after: int, limit: int, stop: int | None):
        self.reader, self.after, self.limit, self.stop = reader, after, limit, stop

    def __iter__(self) -> Iterator[Sequence[LogRow]]:
        after = self.after
        while page := self.reader.page(after, self.limit, self.stop):
            yield page
            after = page[-1][0]


def _same_pg(recorder: Any, store: PostgresViewStore) -> bool:
    datastore = getattr(recorder, "datastore", None)
    return getattr(datastore, "schema", None) == store.schema
