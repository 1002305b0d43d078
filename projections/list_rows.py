"""Live rows kept as lists in a table's column order (not dicts): for the rows every order of
the log makes (``frontend``'s order list, ``balances``' open orders). WHY: a list display of
11-21 values costs about a fifth of the same dict's, and most of these rows are made and
ended within one batch, never written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from projections.tables import Table


def column_at(table: Table, *names: str) -> tuple[int, ...]:
    """Where each named column sits in a row of ``table`` kept as a list."""
    at = {name: i for i, name in enumerate(table.column_names)}
    return tuple(at[name] for name in names)


def list_writer(table: Table) -> Callable[[list[Any]], tuple[Any, ...]]:
    """A live list row as ``table``'s database values, written out as one function (money
    made text in the tuple display, as ``Table.to_db`` writes it); its texts are not checked
    (``Table.storable`` does that)."""
    names = [f"v{i}" for i in range(len(table.columns))]
    outs = [f"(None if {v} is None else str({v}))" if kind == "money" else v
            for v, (_, kind) in zip(names, table.columns, strict=True)]
    namespace: dict[str, Any] = {}
    exec(f"def values(row):\n    {', '.join(names)}, = row\n"  # (column names only)
         f"    return ({', '.join(outs)},)\n", namespace)
    return namespace["values"]
