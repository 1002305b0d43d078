"""The time each event was recorded, kept by the database beside the stored event.

An event's own ``timestamp`` is when the engine decided it: market time in a backtest. When
it reached the log is another fact, and the one time travel (``--as-of``) and exports
(``--since``) ask about. It is not part of the stored state (stored runs must stay byte for
byte what they were, for ``replay --check``): it is a column ``recorded_at`` of the events
table, filled by the database as the row is inserted, so the library's own INSERT is
unchanged on PostgreSQL and names its columns on SQLite.

Rows stored before this column existed hold NULL: "recorded before this version", ordered by
their position like every other row.
"""

from __future__ import annotations

RECORDED_AT = "recorded_at"
# SQLite: UTC, ISO 8601 with microseconds (SQLite keeps milliseconds) and "+00:00", the
# shape of ``datetime.isoformat()`` for an aware time with microseconds: fixed width, so
# comparing as text compares times.
SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%f000+00:00','now')"
# PostgreSQL: the time at the insert itself, taken after the table lock the library's
# insert holds, so recorded times follow the commit (notification) order.
POSTGRES_NOW = "clock_timestamp()"
POSTGRES_TEXT = "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
