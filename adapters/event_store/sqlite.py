"""The library's SQLite event store, with the time each event was recorded and a seal of
every event it stores (``PERSISTENCE_MODULE=adapters.event_store.sqlite``).

The library's recorders, subclassed through their documented hooks (the create statements,
the insert statement and ``_insert_events``):

- the events table has a ``recorded_at`` column the database fills at insert (see
  ``adapters.event_store.recorded_time``). A table made by an earlier version gains the
  column (``ALTER TABLE``; its rows keep NULL). SQLite cannot add a column whose default is
  not a constant, so the insert names the value instead of relying on the default; a new
  table has the default too, for any other writer that names its columns;
- the seals go into ``event_seals`` in the same transaction as the events (see
  ``adapters/event_store/sealing.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing import sqlite

from adapters.event_store.recorded_time import RECORDED_AT, SQLITE_NOW
from adapters.event_store.sealing import SEALS_TABLE, Sealing, key_source


def _hex(oid: Any) -> str:
    return oid.hex if type(oid) is UUID else str(oid)


class _RecordedTime:
    events_table_name: str
    datastore: sqlite.SQLiteDatastore
    keeps_recorded_time = True  # what projections.reader.RecordedTimes asks

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.insert_events_statement = (
            f"INSERT INTO {self.events_table_name} "
            f"(originator_id, originator_version, topic, state, {RECORDED_AT}) "
            f"VALUES (?,?,?,?,{SQLITE_NOW})")

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()  # type: ignore[misc]
        events = f"{self.events_table_name} ("
        for i, statement in enumerate(statements):
            head, _, tail = statement.rpartition(", PRIMARY KEY")
            if events in statement and tail:  # one more column before the table's key
                statements[i] = (f"{head}, {RECORDED_AT} TEXT DEFAULT ({SQLITE_NOW})"
                                 f", PRIMARY KEY{tail}")
        return statements

    def _create_table(self, c) -> None:
        super()._create_table(c)  # type: ignore[misc]
        c.execute(f"PRAGMA table_info({self.events_table_name})")
        if RECORDED_AT not in {row[1] for row in c.fetchall()}:
            c.execute(f"ALTER TABLE {self.events_table_name} ADD COLUMN {RECORDED_AT} TEXT")


class ApplicationRecorder(Sealing, _RecordedTime, sqlite.SQLiteApplicationRecorder):
    """The application's log (the notification sequence): recorded times and seals.
    Snapshots and tracking stay the library's."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {SEALS_TABLE} (originator_id TEXT, "
                "originator_version INTEGER, key_id TEXT NOT NULL, seal TEXT NOT NULL, "
                "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID"]

    def _insert_events(self, c: Any, stored_events: Sequence[Any], **kwargs: Any
                       ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        rows = self.seal_rows(stored_events, _hex)
        if rows:
            # REPLACE: a seal left behind by a deleted event must not outlive a new one.
            c.executemany(f"INSERT OR REPLACE INTO {SEALS_TABLE} VALUES (?, ?, ?, ?)", rows)
        return ids

    def sealed_log_page(self, after: int, stop: int, limit: int) -> list[tuple]:
        table = self.events_table_name
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, "
                      f"e.state, s.key_id, s.seal FROM {table} e LEFT JOIN {SEALS_TABLE} s "
                      "ON s.originator_id = e.originator_id AND s.originator_version = "
                      "e.originator_version WHERE e.rowid > ? AND e.rowid <= ? "
                      "ORDER BY e.rowid LIMIT ?", (after, stop, limit))
            return [tuple(row) for row in c.fetchall()]

    def orphan_seals(self, limit: int) -> list[tuple[str, int]]:
        table = self.events_table_name
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT s.originator_id, s.originator_version FROM {SEALS_TABLE} s "
                      f"LEFT JOIN {table} e ON s.originator_id = e.originator_id AND "
                      "s.originator_version = e.originator_version WHERE e.originator_id IS "
                      "NULL LIMIT ?", (limit,))
            return [tuple(row) for row in c.fetchall()]


class ProcessRecorder(_RecordedTime, sqlite.SQLiteProcessRecorder):
    pass


class Factory(sqlite.SQLiteFactory):
    """The library's SQLite factory with the recorders above. The audit key: the
    environment's ``TRADETAPE_AUDIT_KEY``, else the file ``TRADETAPE_AUDIT_KEY_FILE``, else
    ``<SQLite file>.audit-key``."""

    application_recorder_class = ApplicationRecorder
    process_recorder_class = ProcessRecorder

    def application_recorder(self) -> Any:
        recorder = super().application_recorder()
        dbname = self.env.get("SQLITE_DBNAME") or ""
        beside = None if ":memory:" in dbname or "mode=memory" in dbname else (
            f"{dbname}.audit-key")
        recorder.key_source = key_source(self.env, beside)
        return recorder
