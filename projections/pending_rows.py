"""Rows of a projection's working memory (e.g. orders not final yet) written once at the end
of a batch instead of at every event: a row made and ended within one batch (an order
submitted and filled) never reaches the table."""

from __future__ import annotations

from projections.tables import Changes, Row, Table


class PendingRows:
    """Which rows of ``table`` a batch made, changed or ended (by key), written by
    :meth:`write` from the projection's own dict of live rows."""

    __slots__ = ("changed", "new", "table")

    def __init__(self, table: Table):
        self.table = table
        self.new: set[str] = set()
        self.changed: set[str] = set()

    def made(self, key: str) -> None:
        self.new.add(key)

    def touched(self, key: str) -> None:
        """Changed, or ended (gone from the live rows by the end of the batch)."""
        self.changed.add(key)

    def ended(self, key: str) -> None:
        if key in self.new:  # never written: nothing to delete
            self.new.discard(key)
            self.changed.discard(key)
        else:
            self.changed.add(key)

    def write(self, live: dict[str, Row], out: Changes) -> None:
        table = self.table
        for key in self.new:
            out.insert(table, live[key])
        for key in self.changed - self.new:
            row = live.get(key)
            if row is None:
                out.delete(table, (key,))
            else:
                out.upsert(table, row)
        self.new.clear()
        self.changed.clear()
