"""The library's SQLite event store, sealing every event it stores (``PERSISTENCE_MODULE=
adapters.event_store.sqlite``): the seals go into ``event_seals`` in the same transaction
as the events (see ``adapters/event_store/sealing.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing import sqlite

from adapters.event_store.sealing import SEALS_TABLE, Sealing, key_source


def _hex(oid: Any) -> str:
    return oid.hex if type(oid) is UUID else str(oid)


class ApplicationRecorder(Sealing, sqlite.SQLiteApplicationRecorder):
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


class Factory(sqlite.SQLiteFactory):
    """The library's SQLite factory with the sealing recorder. The audit key: the
    environment's ``TRADETAPE_AUDIT_KEY``, else the file ``TRADETAPE_AUDIT_KEY_FILE``, else
    ``<SQLite file>.audit-key``."""

    application_recorder_class = ApplicationRecorder

    def application_recorder(self) -> Any:
        recorder = super().application_recorder()
        dbname = self.env.get("SQLITE_DBNAME") or ""
        beside = None if ":memory:" in dbname or "mode=memory" in dbname else (
            f"{dbname}.audit-key")
        recorder.key_source = key_source(self.env, beside)
        return recorder
