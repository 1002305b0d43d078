"""The composition root's backups: a store read at one position or restored into, and
backups on a schedule."""

from __future__ import annotations

from adapters.clock import SystemClock
from application.bootstrap_stores import open_trading
from application.settings import parse_database_url, prepare


def open_backup_store(url: str | None = None):
    """The store named by ``url`` (as :func:`open_trading`) for backups: read at one
    position, or (for a restore) its tables created as the applications create them."""
    from adapters.backup.postgres import PostgresBackupStore
    from adapters.backup.sqlite import SqliteBackupStore
    from domain.backup import BackupError

    database = parse_database_url(url)
    if database.kind == "memory":
        raise BackupError("a memory store lives and dies with one process: back up a "
                          "SQLite file or a PostgreSQL database", code="BACKUP_MEMORY_STORE")

    def create_tables() -> None:
        from adapters.backup.catalog import create_data_tables
        from adapters.security.tables import open_tables

        open_trading(database.url).close()
        tables = open_tables(database)
        try:
            create_data_tables(tables)
        finally:
            tables.close()

    prepare(database)
    if database.kind == "sqlite":
        return SqliteBackupStore(database.sqlite_path, create_tables, database.views_path)
    return PostgresBackupStore(database, create_tables)


def open_backup_schedule(url: str | None = None, environ=None):
    """Scheduled backups of the store ``url`` as ``TRADETAPE_BACKUP_DIR`` and
    ``TRADETAPE_BACKUP_EVERY`` ask (see ``application.backup_schedule``), not started; None
    when they are off."""
    import os

    from application.backup import create, tradetape_version
    from application.backup_schedule import ScheduledBackups, plan_from_environ

    plan = plan_from_environ(os.environ if environ is None else environ)
    if plan is None:
        return None
    store = open_backup_store(url)
    clock = SystemClock()
    return ScheduledBackups(plan, lambda path: create(store, path, clock=clock,
                                                      version=tradetape_version()), clock)
