"""The read API over the view store for bots, deals, orders and exchange accounts: what the
GraphQL layer's DataLoaders call (they never write SQL themselves).

Every function that takes a list of ids answers with one query per call (chunked past
``CHUNK`` ids), so a page of bots with their open deals and orders costs a constant number
of queries. Lists are paged with opaque cursors over a stable order; ``owner=None`` means
every owner (an administrator's view).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from projections.balances import ACCOUNTS
from projections.frontend import FE_BOTS, FE_DEALS, FE_ORDERS
from projections.store import ViewStore
from projections.tables import Row, Table

MAX_PAGE = 100
CHUNK = 500
DEAL_STATUSES = frozenset({"open", "closed", "cancelled"})


class InvalidCursorError(ValueError):
    """A cursor this API did not hand out (or one for another list)."""

    code = "INVALID_CURSOR"


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    has_next: bool
    cursors: list[str]
    has_previous: bool = False

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeError):
        raise InvalidCursorError(f"{cursor!r} is not a cursor of this list") from None
    if not isinstance(parts, list) or len(parts) != arity:
        raise InvalidCursorError(f"{cursor!r} is not a cursor of this list")
    return parts


def page_size(first: int | None, default: int = 50) -> int:
    """``first`` clamped to 1..MAX_PAGE."""
    return max(1, min(MAX_PAGE, default if first is None else first))


def by_ids(store: ViewStore, table: Table, column: str, ids: Iterable[str],
           extra: str = "", params: Sequence[Any] = ()) -> list[Row]:
    """Rows whose ``column`` is one of ``ids``: one query per CHUNK ids."""
    wanted = list(dict.fromkeys(ids))
    rows: list[Row] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        where = f"{column} IN ({', '.join('?' * len(chunk))})" + (f" AND {extra}" if extra
                                                                   else "")
        rows += store.select(table, where, [*chunk, *params])
    return rows


def _keyset(store: ViewStore, table: Table, where: list[str], params: list[Any],
            order: tuple[str, str], descending: bool, first: int | None,
            after: str | None, backwards: bool = False) -> Page:
    """One page in ``order`` (two columns, the second unique) after the cursor ``after``;
    ``backwards``: the ``first`` rows just before that cursor (the list's end without one),
    still in the list's order."""
    size = page_size(first)
    a, b = order
    down = descending != backwards  # the direction the database reads in
    if after:
        x, y = decode_cursor(after, 2)
        op = "<" if down else ">"
        where = [*where, f"({a} {op} ? OR ({a} = ? AND {b} {op} ?))"]
        params = [*params, x, x, y]
    direction = " DESC" if down else ""
    rows = store.select(table, " AND ".join(where), params,
                        order=f"{a}{direction}, {b}{direction}", limit=size + 1)
    kept = rows[:size][::-1] if backwards else rows[:size]
    cursors = [encode_cursor(r[a], r[b]) for r in kept]
    if backwards:
        return Page(kept, after is not None, cursors, has_previous=len(rows) > size)
    return Page(kept, len(rows) > size, cursors)


def count(store: ViewStore, table: Table, where: list[str], params: list[Any]) -> int:
    text = f"SELECT COUNT(*) FROM {store.q(table.name)}"
    return int(store.query(text + (f" WHERE {' AND '.join(where)}" if where else ""),
                           params)[0][0])


# --- bots -----------------------------------------------------------------------------------


def bot_filters(owner: str | None) -> tuple[list[str], list[Any]]:
    """An owner's bots (everyone's for None) but the deleted (archived) ones."""
    where, params = (["owner_id = ?"], [owner]) if owner is not None else ([], [])
    return [*where, "archived = 0"], params


def bots_page(store: ViewStore, owner: str | None, first: int | None = None,
              after: str | None = None, last: int | None = None,
              before: str | None = None) -> Page:
    """An owner's bots, oldest first; ``last``/``before`` page backwards."""
    where, params = bot_filters(owner)
    if last is not None or before is not None:
        return _keyset(store, FE_BOTS, where, params, ("created_at", "bot_id"), False, last,
                       before, backwards=True)
    return _keyset(store, FE_BOTS, where, params, ("created_at", "bot_id"), False, first,
                   after)


def bots_count(store: ViewStore, owner: str | None) -> int:
    return count(store, FE_BOTS, *bot_filters(owner))


def bots_by_id(store: ViewStore, ids: Iterable[str]) -> dict[str, Row]:
    return {r["bot_id"]: r for r in by_ids(store, FE_BOTS, "bot_id", ids)}


def active_bots(store: ViewStore, owner: str) -> list[Row]:
    """An owner's bots that are not stopped (a stopped bot never runs again)."""
    return store.select(FE_BOTS, "owner_id = ? AND status <> 'stopped'", (owner,),
                        order="created_at, bot_id")


# --- deals and orders -----------------------------------------------------------------------


def deals_by_id(store: ViewStore, ids: Iterable[str]) -> dict[str, Row]:
    return {r["deal_id"]: r for r in by_ids(store, FE_DEALS, "deal_id", ids)}


def deal_filters(owner: str | None, bot_id: str | None = None,
                 status: str | None = None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("owner_id", owner), ("bot_id", bot_id), ("status", status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return where, params


def deals_page(store: ViewStore, *, owner: str | None, bot_id: str | None = None,
               status: str | None = None, first: int | None = None,
               after: str | None = None, last: int | None = None,
               before: str | None = None) -> Page:
    """Deals, newest first: an owner's (or everyone's), of one bot, in one status;
    ``last``/``before`` page backwards."""
    where, params = deal_filters(owner, bot_id, status)
    if last is not None or before is not None:
        return _keyset(store, FE_DEALS, where, params, ("opened_at", "deal_id"), True, last,
                       before, backwards=True)
    return _keyset(store, FE_DEALS, where, params, ("opened_at", "deal_id"), True, first,
                   after)


def deals_count(store: ViewStore, filters: tuple[list[str], list[Any]]) -> int:
    return count(store, FE_DEALS, *filters)


def orders_by_deal(store: ViewStore, deal_ids: Iterable[str]) -> dict[str, list[Row]]:
    """Each deal's orders in the order they were placed (orders of one engine step share
    a time: the base order, then the safety orders by rung, then the rest)."""
    found: dict[str, list[Row]] = {}
    rows = by_ids(store, FE_ORDERS, "deal_id", deal_ids)
    for row in sorted(rows, key=_placed):
        found.setdefault(row["deal_id"], []).append(row)
    return found


def order_filters(owner: str | None, bot_id: str | None, deal_id: str | None,
                  status: str | None) -> tuple[list[str], list[Any]]:
    where, params = deal_filters(owner, bot_id, status)
    if deal_id is not None:
        where.append("deal_id = ?")
        params.append(deal_id)
    return where, params


def orders_page(store: ViewStore, filters: tuple[list[str], list[Any]], *,
                first: int | None = None, after: str | None = None, last: int | None = None,
                before: str | None = None) -> Page:
    """Orders, newest first, as ``order_filters`` chose them; ``last``/``before`` page
    backwards."""
    where, params = filters
    if last is not None or before is not None:
        return _keyset(store, FE_ORDERS, where, params, ("created_at", "order_id"), True,
                       last, before, backwards=True)
    return _keyset(store, FE_ORDERS, where, params, ("created_at", "order_id"), True, first,
                   after)


def orders_count(store: ViewStore, filters: tuple[list[str], list[Any]]) -> int:
    return count(store, FE_ORDERS, *filters)


def _placed(row: Row) -> tuple:
    rank = {"base": 0, "safety": 1}.get(row["purpose"], 2)
    return (row["created_at"], rank, row["safety_order"], row["order_id"])


def live_order_ids(store: ViewStore, deal_ids: Iterable[str]) -> set[str]:
    """Orders of these deals that are not final yet."""
    final = "status NOT IN ('filled', 'cancelled', 'rejected', 'expired')"
    return {r["order_id"] for r in by_ids(store, FE_ORDERS, "deal_id", deal_ids, final)}


# --- exchange accounts ----------------------------------------------------------------------


def accounts_by_id(store: ViewStore, ids: Iterable[str]) -> dict[str, Row]:
    return {r["account_id"]: r for r in by_ids(store, ACCOUNTS, "account_id", ids)}


def owned_ids(store: ViewStore, owner: str) -> set[str]:
    """Ids of everything ``owner`` has that can still change: bots, open deals, live
    orders and exchange accounts (what a subscription to their portfolio listens to)."""
    bots = store.select(FE_BOTS, "owner_id = ?", (owner,))
    deals = store.select(FE_DEALS, "owner_id = ? AND status = 'open'", (owner,))
    accounts = store.select(ACCOUNTS, "owner_id = ?", (owner,))
    deal_ids = [d["deal_id"] for d in deals]
    return ({b["bot_id"] for b in bots} | set(deal_ids) | live_order_ids(store, deal_ids)
            | {a["account_id"] for a in accounts})


def drift_stream(store: ViewStore, account_ids: list[str], owner_id: str,
                 first: int, after: int | None) -> list[Row]:
    """Drift rows (``fe_drift``) of these accounts or this owner's orders, newest first,
    before log position ``after`` when given: at most ``first + 1`` (one more says whether
    there is a next page)."""
    from projections.frontend import FE_DRIFT

    marks = ", ".join("?" for _ in account_ids) or "NULL"
    where = f"(account_id IN ({marks}) OR owner_id = ?)"
    params: list[Any] = [*account_ids, owner_id]
    if after is not None:
        where += " AND position < ?"
        params.append(after)
    return store.select(FE_DRIFT, where, params, order="position DESC", limit=first + 1)


def deal_links(store: ViewStore, owner: str) -> dict[str, tuple[str, str]]:
    """``id: (bot id, deal id)`` of the owner's open deals and their live orders (what an
    owner-wide deal subscription starts following)."""
    deals = store.select(FE_DEALS, "owner_id = ? AND status = 'open'", (owner,))
    links = {d["deal_id"]: (d["bot_id"], d["deal_id"]) for d in deals}
    final = "status NOT IN ('filled', 'cancelled', 'rejected', 'expired')"
    for order in by_ids(store, FE_ORDERS, "deal_id", list(links), final):
        links[order["order_id"]] = (order["bot_id"], order["deal_id"])
    return links

