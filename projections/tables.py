"""Declared view tables and the row changes a batch of events makes to them.

Column types are ``text``, ``int`` and ``money``. Money is stored as TEXT on SQLite and on
PostgreSQL alike: ``str(Decimal)`` keeps the exact value and its scale, and the two backends
run the same SQL. Rows are dicts of Python values (``Decimal`` for money) while a batch is
built; they become tuples only when written.

Text columns hold any text the event log holds. PostgreSQL TEXT cannot hold U+0000, and
neither backend's driver can write a lone surrogate (no UTF-8 form), so such code points
are written escaped: ``"\u2400"`` (SYMBOL FOR NULL, shown as ␀) followed by the code point in
four lower-case hex digits, e.g. ``"a\x00b"`` is stored as ``"a␀0000b"``; ␀ itself is
stored as ``"␀2400"``. Every other text is stored as it is. Rows read back through
:meth:`Table.from_db` (``ViewStore.select``) are unescaped, so a projection's state and
every answer built from rows are the event's own text; a raw SQL reader sees the escaped
form. New input can no longer carry such characters (``domain/text.py``); events stored
before that rule, or written by other tools, still can.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import Any

SQL_TYPES = {"text": "TEXT", "int": "BIGINT", "money": "TEXT"}
ESCAPE = "\u2400"
_UNSTORABLE = re.compile("[\x00\u2400\ud800-\udfff]")
_ESCAPED = re.compile("\u2400([0-9a-f]{4})")


def storable(text: str) -> str:
    """``text`` as a view stores it (see the module's docstring)."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: f"{ESCAPE}{ord(m.group()):04x}", text)


def unstored(text: str) -> str:
    """The inverse of :func:`storable`."""
    if ESCAPE not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


def _storable_values(values: tuple[Any, ...], at: tuple[int, ...]) -> tuple[Any, ...]:
    """``values`` with the text at indexes ``at`` made storable (the same tuple if none
    needed it). The slow path: ``Table.to_db`` and ``Table.storable`` first tell all of a
    row's texts at once (``_ascii_check``) and only send here a row that may need it."""
    changed = None
    search = _UNSTORABLE.search
    for i in at:
        value = values[i]
        if value.__class__ is str and (
                ("\x00" in value) if value.isascii() else search(value) is not None):
            changed = changed or list(values)
            changed[i] = storable(value)
    return values if changed is None else tuple(changed)


Key = tuple[Any, ...]
Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    # (an index's columns, a condition): that index holds only the rows meeting it (a
    # partial index; a query uses it only when its own condition says as much, literally)
    partial: tuple[tuple[tuple[str, ...], str], ...] = ()
    # PostgreSQL's fillfactor (percent of each page filled by inserts; None: its 100) of a
    # table whose rows are replaced over and over: see ``UPDATED_IN_PLACE``. Storage, not
    # shape: not in the schema's hash.
    fillfactor: int | None = None
    # The condition naming the rows a start reads back (open deals, live orders), literally
    # as the load's query says it: an index of the key over just those rows (``ox_…``), so
    # a start reads them without scanning the table's whole history (PostgreSQL scanned
    # 1.7 GB of fe_orders, fe_deals and pnl_deals to find 25,000 rows at 10,000 bots:
    # about 1 s, on both cores, at every start, growing with every deal ever closed). An
    # access path, not shape: not in the schema's hash; a table made before it was
    # declared gets it when its projection is next registered (``ViewStore.register``).
    open_rows: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def money_columns(self) -> tuple[str, ...]:
        return self._money

    def __post_init__(self) -> None:
        # Worked out once: every row read or written goes through them.
        names = tuple(name for name, _ in self.columns)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_money", tuple(
            name for name, kind in self.columns if kind == "money"))
        # A row's key as a tuple in one call (an itemgetter of one name gives the bare value).
        key_of = (itemgetter(*self.key) if len(self.key) > 1
                  else _single_key(self.key[0]))
        object.__setattr__(self, "key_of", key_of)
        object.__setattr__(self, "from_db", _row_reader(self.columns))
        object.__setattr__(self, "to_db", _row_writer(self.columns))
        object.__setattr__(self, "storable", _values_checker(self.columns))
        kinds = dict(self.columns)
        object.__setattr__(self, "_key_text_at", tuple(
            i for i, name in enumerate(self.key) if kinds[name] == "text"))

    def key_of(self, row: Row) -> Key:  # replaced per table in ``__post_init__``
        raise NotImplementedError

    def to_db(self, row: Row) -> tuple[Any, ...]:  # replaced per table in ``__post_init__``
        """The row's values in column order, money as exact text, every text storable
        (``_row_writer``)."""
        raise NotImplementedError

    def storable(self, values: tuple[Any, ...]) -> tuple[Any, ...]:  # replaced likewise
        """Database values in column order with every text made storable (the same tuple
        if none needed it: ``_values_checker``)."""
        raise NotImplementedError

    def storable_key(self, key: Key) -> Key:
        return _storable_values(key, self._key_text_at)

    def from_db(self, values: Iterable[Any]) -> Row:  # replaced per table in ``__post_init__``
        """The row as stored: money as ``Decimal``, text unescaped (``_row_reader``)."""
        raise NotImplementedError

    def ddl(self, collate: str = "", key: bool = True) -> str:
        """Column definitions for CREATE TABLE (the table name is the store's business);
        ``collate``: every text column's collation (PostgreSQL's ``"C"``: see
        ``PostgresViewStore.TEXT_COLLATION``); ``key`` False: without the primary key (a
        rebuild's shadow built after loading: ``ViewStore.key_statements``)."""
        text = f" COLLATE {collate}" if collate else ""
        cols = [f"{name} {SQL_TYPES[kind]}{text if SQL_TYPES[kind] == 'TEXT' else ''}"
                f"{' NOT NULL' if name in self.key else ''}"
                for name, kind in self.columns]
        return ", ".join([*cols, f"PRIMARY KEY ({', '.join(self.key)})"] if key else cols)


def _row_reader(columns: tuple[tuple[str, str], ...]) -> Callable[[Iterable[Any]], Row]:
    """``Table.from_db`` for these columns, written out as one function: the values
    unpacked by position, the row made as one dict display, each money value made a
    ``Decimal`` and each text unescaped in place. WHY: a start reads ~250,000 rows at
    10,000 bots; the generic loop (a dict of ``zip``, then a pass per money and text
    column) cost 1.5 us a row of ``paper_book_orders``, this 0.9 (0.6 and 0.2 for a
    bot's row)."""
    values, entries = [], []
    for i, (name, kind) in enumerate(columns):
        value = f"v{i}"
        values.append(value)
        if kind == "money":
            value = f"(None if {value} is None else Decimal({value}))"
        elif kind == "text":
            value = f"(unstored({value}) if {value}.__class__ is str and ESCAPE in {value} " \
                    f"else {value})"
        entries.append(f"{name!r}: {value}")
    source = (f"def from_db(values):\n    {', '.join(values)}, = values\n"
              f"    return {{{', '.join(entries)}}}\n")
    return _compiled(source, "from_db")


def _ascii_check(columns: tuple[tuple[str, str], ...], of: Callable[[int], str]) -> str:
    """The source of a test that every text column's value (``of(i)``: its expression) is
    ASCII without NUL, so storable as it is. All of them formatted into one f-string, told in
    two C calls: a ``str`` formats as itself; ``None`` or a number only adds ASCII, so the
    test may send a row to the slow path needlessly but never lets an unstorable text by."""
    parts = "".join(f"{{{of(i)}}}" for i, (_, kind) in enumerate(columns) if kind == "text")
    if not parts:
        return "True"
    return f'(j := f"{parts}").isascii() and "\\x00" not in j'


def _compiled(source: str, name: str, **namespace: Any) -> Callable[..., Any]:
    namespace = {"Decimal": Decimal, "unstored": unstored, "ESCAPE": ESCAPE, **namespace}
    exec(source, namespace)  # (made by the callers: column names only as quoted keys)
    return namespace[name]


def _row_writer(columns: tuple[tuple[str, str], ...]) -> Callable[[Row], tuple[Any, ...]]:
    """``Table.to_db`` for these columns, written out as one function: the values taken in
    one ``itemgetter`` call, each money value made text in the tuple display, and the texts
    told storable at once (``_ascii_check``); only a row that fails the test goes through
    ``_storable_values``. WHY: every row a batch inserts or upserts is frozen on the main
    thread (``Changes.freeze``); the generic version (a list of the values, a loop over the
    money columns, a join of the texts) was most of a rebuild's untimed main-thread work."""
    names = [f"v{i}" for i in range(len(columns))]
    outs = [f"(None if {v} is None else str({v}))" if kind == "money" else v
            for v, (_, kind) in zip(names, columns, strict=True)]
    text_at = tuple(i for i, (_, kind) in enumerate(columns) if kind == "text")
    source = (f"def to_db(row):\n    {', '.join(names)}, = values(row)\n"
              f"    out = ({', '.join(outs)},)\n"
              f"    if {_ascii_check(columns, lambda i: f'v{i}')}:\n        return out\n"
              f"    return storable_values(out, {text_at!r})\n")
    getter = itemgetter(*(name for name, _ in columns))
    if len(columns) == 1:  # (an itemgetter of one name gives the bare value)
        getter = _single_key(columns[0][0])
    return _compiled(source, "to_db", values=getter, storable_values=_storable_values)


def _values_checker(columns: tuple[tuple[str, str], ...]
                    ) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """``Table.storable`` for these columns, written out like ``_row_writer``'s test."""
    text_at = tuple(i for i, (_, kind) in enumerate(columns) if kind == "text")
    source = (f"def storable(values):\n"
              f"    if {_ascii_check(columns, lambda i: f'values[{i}]')}:\n"
              f"        return values\n"
              f"    return storable_values(values, {text_at!r})\n")
    return _compiled(source, "storable", storable_values=_storable_values)


def _single_key(name: str) -> Callable[[Row], Key]:
    def key_of(row: Row) -> Key:
        return (row[name],)

    return key_of


# The fillfactor of tables whose rows are replaced again and again (bots' tallies, each
# scope's latest minute): half of each page left free, so PostgreSQL writes a row's new
# version beside the old one and, no indexed column changing, adds no index entry (a HOT
# update; the old one is pruned when the page is next filled). Filled pages put every new
# version on another page with an entry in each index: ``equity_latest``'s 11,000 rows
# replaced by one statement took the backend 42-49 ms at 100 and 24-26 ms at 50, again
# and again with or without a VACUUM between (all of them HOT at 50, 1% at 100). The
# cost: such a table takes about twice the pages.
UPDATED_IN_PLACE = 50
# The rows a start reads back of a table of deals (``Table.open_rows``).
OPEN_DEALS = "status = 'open'"


def table(table_name: str, /, *, key: tuple[str, ...],
          indexes: tuple[tuple[str, ...], ...] = (),
          partial: tuple[tuple[tuple[str, ...], str], ...] = (),
          fillfactor: int | None = None, open_rows: str | None = None,
          **columns: str) -> Table:
    for kind in columns.values():
        if kind not in SQL_TYPES:
            raise ValueError(f"unknown column type {kind!r} in {table_name}")
    if any(cols not in indexes for cols, _ in partial):
        raise ValueError(f"a partial index of {table_name} is not one of its indexes")
    if fillfactor is not None and not 10 <= fillfactor <= 100:
        raise ValueError(f"fillfactor of {table_name} outside PostgreSQL's 10-100")
    return Table(table_name, tuple(columns.items()), key, indexes, partial, fillfactor,
                 open_rows)


def schema_hash(tables: Iterable[Table], revision: int = 0) -> str:
    """Changes whenever a table's shape does, or the projection's ``revision``: stored
    tables of another shape, or written by older handlers, need a rebuild."""
    text = "|".join(f"{t.name}({t.ddl()}){t.indexes}{t.partial or ''}" for t in tables)
    if revision:  # (revision 0 hashes as before it existed: no rebuild for the others)
        text += f"|revision {revision}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Frozen:
    """One table's changes of a batch, as values ready to write."""

    table: Table
    gone: list[Key]
    inserts: list[tuple[Any, ...]]
    upserts: list[tuple[Any, ...]]
    # rows written earlier whose named columns change: (column names, values + key values)
    patches: list[tuple[tuple[str, ...], tuple[Any, ...]]] = field(default_factory=list)


class TableChanges:
    """What one batch does to one table: rows new to it, rows replaced, rows removed."""

    __slots__ = ("appended", "gone", "new", "patched", "put", "put_ready", "ready", "table")

    def __init__(self, table: Table):
        self.table = table
        self.new: dict[Key, Row] = {}
        self.put: dict[Key, Row] = {}
        self.gone: set[Key] = set()
        self.appended: list[tuple[Any, ...]] = []  # new rows, already in column order
        self.ready: list[tuple[Any, ...]] = []  # new rows, their text known storable
        self.patched: dict[Key, Row] = {}  # columns to change in rows written before
        self.put_ready: list[tuple[Any, ...]] = []  # rows replaced, already database values

    def __bool__(self) -> bool:
        return bool(self.new or self.put or self.gone or self.appended or self.ready
                    or self.patched or self.put_ready)

    def frozen_patches(self) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        """Each patch as (its columns, their database values followed by the key's), every
        text made storable like a whole row's."""
        money = set(self.table.money_columns)
        return [(tuple(values),
                 tuple(str(v) if c in money and v is not None
                       else storable(v) if v.__class__ is str else v
                       for c, v in values.items()) + self.table.storable_key(key))
                for key, values in self.patched.items()]


class Changes:
    """The row changes of one projection for one batch. A row inserted and deleted within
    the batch never reaches the database; a row changed twice is written once."""

    def __init__(self, tables: Iterable[Table]):
        self.tables = {t.name: TableChanges(t) for t in tables}

    def insert(self, table: Table, row: Row) -> None:
        """A row the table cannot hold yet (a new entity, an audit line)."""
        self.tables[table.name].new[table.key_of(row)] = row

    def append(self, table: Table, values: tuple[Any, ...]) -> None:
        """A new row given as database values in column order (append-only tables)."""
        self.tables[table.name].appended.append(values)

    def append_storable(self, table: Table, values: tuple[Any, ...]) -> None:
        """As :meth:`append`, for values whose every text the caller knows storable (plain
        ASCII without NUL): written without checking them again."""
        self.tables[table.name].ready.append(values)

    def insert_values(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """New rows already frozen (each what ``table.to_db`` made of it, taken no earlier
        than the end of the batch's events): one set of rows written into several tables of
        the same columns is frozen once (the ledgers' books, ``ledger.py``). The caller
        inserts, upserts and deletes each key of ``table`` one way only in a batch."""
        self.tables[table.name].ready += rows

    def upsert_values(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Rows that may replace rows of the same key, frozen as for :meth:`insert_values`."""
        self.tables[table.name].put_ready += rows

    def upsert(self, table: Table, row: Row) -> None:
        changes = self.tables[table.name]
        key = table.key_of(row)
        new = changes.new
        if key in new:
            new[key] = row
        else:
            changes.put[key] = row
            if changes.gone:  # most batches delete nothing
                changes.gone.discard(key)

    def delete(self, table: Table, key: Key) -> None:
        changes = self.tables[table.name]
        changes.patched.pop(key, None)
        if changes.new.pop(key, None) is not None:
            return
        changes.put.pop(key, None)
        changes.gone.add(key)

    def patch(self, table: Table, key: Key, **values: Any) -> None:
        """Change the named columns of a row the projection no longer keeps in memory (it
        was written by an earlier batch, which may still be being committed): applied after
        the batch's other changes to the table, in the same transaction."""
        changes = self.tables[table.name]
        changes.patched.setdefault(key, {}).update(values)

    def __iter__(self):
        return (c for c in self.tables.values() if c)

    def freeze(self) -> list[Frozen]:
        """The changes as database values, taken now: the rows are the projection's live
        state, which the next batch changes while this one is being committed."""
        return [_frozen(tc) for tc in self]

    def count(self) -> int:
        return sum(len(c.new) + len(c.put) + len(c.gone) + len(c.appended) + len(c.ready)
                   + len(c.patched) + len(c.put_ready)
                   for c in self.tables.values())


def _frozen(tc: TableChanges) -> Frozen:
    """One table's changes frozen (``map`` over each table's own converters: no method
    looked up per row)."""
    table = tc.table
    inserts = list(map(table.to_db, tc.new.values()))
    if tc.appended:
        inserts += map(table.storable, tc.appended)
    inserts += tc.ready
    upserts = list(map(table.to_db, tc.put.values()))
    upserts += tc.put_ready
    return Frozen(table, list(map(table.storable_key, tc.gone)) if tc.gone else [], inserts,
                  upserts, tc.frozen_patches())
