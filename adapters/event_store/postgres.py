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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing import postgres

from adapters.event_store.recorded_time import POSTGRES_NOW, RECORDED_AT
from application.settings import lock_ddl


@contextmanager
def ddl_lock(datastore: postgres.PostgresDatastore) -> Iterator[None]:
    """Hold the DDL lock of ``datastore``'s database until the block ends."""
    pool = datastore.pool
    kwargs = {k: v for k, v in dict(pool.kwargs).items() if k != "row_factory"}
    if pool.get_password_func is not None:
        kwargs["password"] = pool.get_password_func()
    with (
        psycopg.connect(**kwargs, autocommit=True, connect_timeout=max(1, int(pool.timeout)))
        as conn,
        conn.transaction(),
    ):
        lock_ddl(conn)
        yield


class _SerialCreation:
    datastore: postgres.PostgresDatastore

    def create_table(self) -> None:
        with ddl_lock(self.datastore):
            super().create_table()  # type: ignore[misc]


class AggregateRecorder(_SerialCreation, postgres.PostgresAggregateRecorder):
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


class ApplicationRecorder(_RecordedTime, postgres.PostgresApplicationRecorder):
    pass


class TrackingRecorder(_SerialCreation, postgres.PostgresTrackingRecorder):
    pass


class ProcessRecorder(_RecordedTime, postgres.PostgresProcessRecorder):
    pass


class Factory(postgres.PostgresFactory):
    """``PERSISTENCE_MODULE=adapters.event_store.postgres``: the library's factory with the
    recorders above."""

    aggregate_recorder_class = AggregateRecorder
    application_recorder_class = ApplicationRecorder
    tracking_recorder_class = TrackingRecorder
    process_recorder_class = ProcessRecorder
