"""The read API for the audit log: pages of entries, newest first, filtered by actor and
aggregate, and for a user limited to the aggregates they own."""

from __future__ import annotations

from typing import Any

from domain.emergency_exits import exit_run_id
from domain.recording import ENGINE
from domain.risk import risk_id
from projections.audit import AUDIT_LOG, PARTIAL_ACTOR
from projections.balances import ACCOUNTS
from projections.frontend import FE_BOTS, FE_DEALS, FE_ORDERS, FE_POSITIONS
from projections.queries import (
    InvalidCursorError,
    Page,
    decode_cursor,
    encode_cursor,
    page_size,
)
from projections.store import ViewStore

OWNED = 6  # the parts of ``_owned``, each taking the owner


def _owned(store: ViewStore) -> str:
    """Ids of the aggregates one owner has (``_owned_params``): their bots, deals, orders,
    positions and exits, exchange accounts, their user, their risk limits and the record of
    their emergency exits."""
    parts = [f"SELECT bot_id FROM {store.q(FE_BOTS.name)} WHERE owner_id = ?",
             f"SELECT deal_id FROM {store.q(FE_DEALS.name)} WHERE owner_id = ?",
             f"SELECT order_id FROM {store.q(FE_ORDERS.name)} WHERE owner_id = ?",
             f"SELECT aggregate_id FROM {store.q(FE_POSITIONS.name)} WHERE owner_id = ?",
             f"SELECT account_id FROM {store.q(ACCOUNTS.name)} WHERE owner_id = ?",
             "SELECT ?", "SELECT ?", "SELECT ?"]
    return " UNION ALL ".join(parts)


def _owned_params(owner: str) -> list[Any]:
    return [owner] * OWNED + [str(risk_id(owner)), str(exit_run_id(owner))]


def audit_page(store: ViewStore, *, owner: str | None, actor: str | None = None,
               aggregate_id: str | None = None, first: int | None = None,
               after: str | None = None) -> Page:
    """Entries, newest first. ``owner``: only events of aggregates that owner has (None:
    every event, for administrators)."""
    where: list[str] = []
    params: list[Any] = []
    if owner is not None:
        where.append(f"aggregate_id IN ({_owned(store)})")
        params += _owned_params(owner)
    if actor is not None:
        where.append("actor = ?")
        params.append(actor)
        if actor != ENGINE:  # said literally: the actor's index holds only these rows
            where.append(PARTIAL_ACTOR)
    if aggregate_id is not None:
        where.append("aggregate_id = ?")
        params.append(aggregate_id)
    if after:
        (position,) = decode_cursor(after, 1)
        if type(position) is not int:
            raise InvalidCursorError(f"{after!r} is not a cursor of the audit log")
        where.append("position < ?")
        params.append(position)
    size = page_size(first)
    # An owner's page, planned each time: the way to it depends on how many events the
    # owner's aggregates have (few: through their aggregate ids' index; many: back by
    # position, keeping theirs), and a reused plan of a busy owner's walked the whole log
    # back for one who has few (100k rows: 40 ms a page instead of 0.4; small19).
    rows = store.select(AUDIT_LOG, " AND ".join(where), params, order="position DESC",
                        limit=size + 1, planned_each_time=owner is not None)
    kept = rows[:size]
    return Page(kept, len(rows) > size, [encode_cursor(r["position"]) for r in kept])
