"""The tables a backup keeps: the one list to extend when a table of truth is added.

``log``: an application's stored events; its position column is the notification id (on
SQLite the table's ``rowid``, not a declared column). ``data``: rows that are not events
but without which a restored store is not the same store (the data keys sealing personal
data, the email index, the server secret). ``witness``: kept for checking only, never
restored: the audit chain, which a restore rebuilds from the log and compares.

Read models (``projections/``, ``projection_tracking``) are not here: they are rebuilt.
A table that does not exist in the source is left out of a backup; a table a backup holds
must exist in the target once the target was opened as the application opens it, else the
restore stops with ``BACKUP_INCOMPATIBLE`` before writing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

LOG, DATA, WITNESS = "log", "data", "witness"
POSITION = "notification_id"


@dataclass(frozen=True)
class KeptTable:
    name: str  # its name in the backup
    role: str
    sqlite: str  # its name in a SQLite file
    postgres: str  # its name in a PostgreSQL schema
    position: str | None = None  # the column holding the log position, if any
    application: str | None = None  # the eventsourcing application whose log it is

    def table_name(self, kind: str) -> str:
        return self.sqlite if kind == "sqlite" else self.postgres


KEPT_TABLES: tuple[KeptTable, ...] = (
    # Trading's log holds Identity's events too (one totally ordered log).
    KeptTable("trading_events", LOG, "stored_events", "trading_events", POSITION, "Trading"),
    # Side tables of the log (e.g. event seals, when a version adds them): same position.
    KeptTable("event_seals", DATA, "event_seals", "event_seals"),
    KeptTable("user_data_keys", DATA, "user_data_keys", "user_data_keys"),
    KeptTable("user_emails", DATA, "user_emails", "user_emails"),
    KeptTable("server_secrets", DATA, "server_secrets", "server_secrets"),
    KeptTable("audit_log", WITNESS, "audit_log", "audit_log", "position"),
)


def kept(name: str) -> KeptTable:
    for table in KEPT_TABLES:
        if table.name == name:
            return table
    raise KeyError(name)


def create_data_tables(tables) -> None:
    """The ``data`` tables, created by the code that owns them (an ``adapters.security``
    ``Tables``), without writing a row (no server secret is generated)."""
    from adapters.security.email_index import HmacEmailIndex
    from adapters.security.keys import AesGcmDataKeyStore

    AesGcmDataKeyStore(tables)
    HmacEmailIndex(tables, b"")
    tables.table("server_secrets", "name", "secret")  # as server_secret.py makes it
