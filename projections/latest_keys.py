"""The latest row of each group of a table, read on PostgreSQL without reading the table.

A ``GROUP BY`` (or a ``MAX`` per row) reads every row: equity's 1.8M points and P/L's
days at every start of the 10M-event bench log. When the table's primary key is the
group's columns then the ordering column, a walk down that key costs one index probe per
group instead: from the last key, the next lower group's last row, until none is left
(PostgreSQL has no skip scan of its own). SQLite has no ``LATERAL``; its callers group.
"""

from __future__ import annotations

from collections.abc import Sequence


def latest_walk(table: str, group: Sequence[str], by: str) -> str:
    """SQL (PostgreSQL) of the rows ``(*group, by)`` holding each group's greatest ``by``,
    in no particular order. ``table`` is quoted; its key must start with ``group, by``
    (else each probe scans)."""
    columns = ", ".join((*group, by))
    down = ", ".join(f"{c} DESC" for c in (*group, by))
    mine = ", ".join(f"p.{c}" for c in (*group, by))
    lower = (f"({', '.join(f'p.{c}' for c in group)}) < "
             f"({', '.join(f'l.{c}' for c in group)})")
    return (f"WITH RECURSIVE latest({columns}) AS ("
            f"(SELECT {columns} FROM {table} ORDER BY {down} LIMIT 1) UNION ALL "
            f"SELECT {', '.join(f'n.{c}' for c in (*group, by))} FROM latest l "
            f"CROSS JOIN LATERAL (SELECT {mine} FROM {table} p WHERE {lower} "
            f"ORDER BY {down} LIMIT 1) n) SELECT {columns} FROM latest")
