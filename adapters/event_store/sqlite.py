"""The library's SQLite event store, with the time each event was recorded.

``PERSISTENCE_MODULE=adapters.event_store.sqlite``: the library's recorders, subclassed
through their documented hooks (the create statements and the insert statement), so that
the events table has a ``recorded_at`` column the database fills at insert (see
``adapters.event_store.recorded_time``). A table made by an earlier version gains the column
(``ALTER TABLE``; its rows keep NULL). SQLite cannot add a column whose default is not a
constant, so the insert names the value instead of relying on the default; a new table has
the default too, for any other writer that names its columns.
"""

from __future__ import annotations

from eventsourcing import sqlite

from adapters.event_store.recorded_time import RECORDED_AT, SQLITE_NOW


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


class ApplicationRecorder(_RecordedTime, sqlite.SQLiteApplicationRecorder):
    """The application's log (the notification sequence): the only table time travel reads.
    Snapshots and tracking stay the library's."""


class ProcessRecorder(_RecordedTime, sqlite.SQLiteProcessRecorder):
    pass


class Factory(sqlite.SQLiteFactory):
    """``PERSISTENCE_MODULE=adapters.event_store.sqlite``: the library's factory with the
    recorders above."""

    application_recorder_class = ApplicationRecorder
    process_recorder_class = ProcessRecorder
