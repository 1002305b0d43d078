"""Writing a batch's rows: many upserts go through a staging table on PostgreSQL (COPY, then
one set-based upsert), few go one statement each. Either way, and on SQLite, the table ends
up holding the same rows: new keys added, existing keys replaced, texts escaped."""

from __future__ import annotations

from decimal import Decimal

import pytest

from application.settings import parse_database_url, prepare
from projections.store import STAGE_FROM, PostgresViewStore, SQLiteViewStore, ViewStore
from projections.tables import Changes, table

POINTS = table("points", key=("scope", "minute"), scope="text", minute="int",
               note="text", value="money")


def _rows(count: int, value: str) -> list[dict]:
    return [{"scope": f"bot-{n % 3}", "minute": n, "note": "a\x00b" if n % 7 == 0 else None,
             "value": Decimal(value) + n} for n in range(count)]


def _write(store: ViewStore, rows: list[dict]) -> None:
    out = Changes([POINTS])
    for row in rows:
        out.upsert(POINTS, row)
    with store.transaction() as cur:
        store.write(cur, out.freeze())


def _fill(store: ViewStore, count: int) -> list[dict]:
    with store.transaction() as cur:
        store.create_table(cur, POINTS, "", 1)
    _write(store, _rows(count // 2, "1.50"))  # half of them there before
    _write(store, _rows(count, "2.250"))  # replaced, and as many again new
    return store.select(POINTS, order="scope, minute")


@pytest.mark.parametrize("count", [STAGE_FROM * 3, STAGE_FROM // 2])
def test_upserts_leave_the_same_rows_on_postgresql_as_on_sqlite(postgres_url, tmp_path,
                                                               count):
    database = parse_database_url(postgres_url)
    prepare(database)
    postgres, sqlite = PostgresViewStore(database.env), SQLiteViewStore(tmp_path / "v.db")
    try:
        on_postgres, on_sqlite = _fill(postgres, count), _fill(sqlite, count)
    finally:
        postgres.close()
        sqlite.close()
    assert on_postgres == on_sqlite
    assert len(on_postgres) == count
    assert {r["value"] for r in on_postgres} == {Decimal("2.250") + n for n in range(count)}
    assert on_postgres[0]["note"] == "a\x00b"


def test_a_second_batch_of_staged_upserts_sees_none_of_the_first_ones_staging(postgres_url):
    """The staging table empties at each commit: a batch upserts its own rows only."""
    database = parse_database_url(postgres_url)
    prepare(database)
    store = PostgresViewStore(database.env)
    try:
        with store.transaction() as cur:
            store.create_table(cur, POINTS, "", 1)
        _write(store, [dict(r, minute=r["minute"] + 1000) for r in _rows(STAGE_FROM, "1")])
        with store.transaction() as cur:
            store.execute(cur, f"DELETE FROM {store.q('points')}")
        _write(store, _rows(STAGE_FROM, "3"))
        rows = store.select(POINTS)
    finally:
        store.close()
    assert sorted(r["minute"] for r in rows) == list(range(STAGE_FROM))


def test_text_is_ordered_by_its_code_points_on_postgresql_as_on_sqlite(postgres_url, tmp_path):
    """A view's text sorts the same on both stores whatever the database's own collation
    (PostgreSQL's view tables compare text as "C": byte order, UTF-8's code point order)."""
    scopes = ["b", "B", "a", "é", "Z", "ä", "_x", "a b", "ab", "😀", "ÿ", "\u2400"]
    database = parse_database_url(postgres_url)
    prepare(database)
    postgres, sqlite = PostgresViewStore(database.env), SQLiteViewStore(tmp_path / "v.db")
    try:
        orders = []
        for store in (postgres, sqlite):
            with store.transaction() as cur:
                store.create_table(cur, POINTS, "", 1)
            _write(store, [{"scope": s, "minute": 0, "note": None, "value": Decimal(1)}
                           for s in scopes])
            orders.append([r["scope"] for r in store.select(POINTS, order="scope")])
    finally:
        postgres.close()
        sqlite.close()
    assert orders[0] == orders[1] == sorted(scopes)


NAMES = table("names", key=("name",), name="text", value="money")


class _Counting:
    """A cursor that counts the statements it sends (one per set of parameters)."""

    def __init__(self, cur):
        self.cur, self.sent = cur, []

    def execute(self, text, params=None):
        self.sent.append(text)
        return self.cur.execute(text, params)

    def executemany(self, text, params_seq):
        params_seq = list(params_seq)
        self.sent += [text] * len(params_seq)
        return self.cur.executemany(text, params_seq)

    def __getattr__(self, name):
        return getattr(self.cur, name)


def _delete_most(store: ViewStore, count: int) -> tuple[list[dict], list[dict], list[str]]:
    """``count`` points and names, then all but every third of each removed in one batch:
    the rows left, and the DELETE statements the batch sent."""
    names = [{"name": f"n{n}" + ("\x00" if n % 5 == 0 else "é"), "value": Decimal(n)}
             for n in range(count)]
    with store.transaction() as cur:
        store.create_table(cur, POINTS, "", 1)
        store.create_table(cur, NAMES, "", 1)
    out = Changes([POINTS, NAMES])
    for row in _rows(count, "1"):
        out.insert(POINTS, row)
    for row in names:
        out.insert(NAMES, row)
    with store.transaction() as cur:
        store.write(cur, out.freeze())
    out = Changes([POINTS, NAMES])
    for n, row in enumerate(_rows(count, "1")):
        if n % 3:
            out.delete(POINTS, POINTS.key_of(row))
            out.delete(NAMES, NAMES.key_of(names[n]))
    with store.transaction() as cur:
        counting = _Counting(cur)
        store.write(counting, out.freeze())
    deletes = [text for text in counting.sent if text.lstrip().upper().startswith("DELETE")]
    return (store.select(POINTS, order="scope, minute"), store.select(NAMES, order="name"),
            deletes)


def test_many_rows_removed_in_one_statement_a_table_on_postgresql(postgres_url, tmp_path):
    """A batch removing hundreds of rows of a table (a take-profit wave's open orders and
    deals) leaves the same rows as on SQLite, with one DELETE for each table on PostgreSQL
    (not one a row), whatever the key's columns and its text (escaped NUL, non-ASCII)."""
    count = STAGE_FROM * 3
    database = parse_database_url(postgres_url)
    prepare(database)
    postgres, sqlite = PostgresViewStore(database.env), SQLiteViewStore(tmp_path / "v.db")
    try:
        *on_postgres, deletes = _delete_most(postgres, count)
        *on_sqlite, _ = _delete_most(sqlite, count)
    finally:
        postgres.close()
        sqlite.close()
    assert on_postgres == on_sqlite
    points, names = on_postgres
    assert [r["minute"] for r in points] == sorted(range(0, count, 3), key=lambda n: (
        f"bot-{n % 3}", n))
    assert sorted(r["name"] for r in names) == sorted(
        f"n{n}" + ("\x00" if n % 5 == 0 else "é") for n in range(0, count, 3))
    assert len(deletes) == 2
