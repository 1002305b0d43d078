"""The read API for money: an owner's portfolio (balances and P/L, now or as of a past
moment), P/L per bot and per deal, a bot's daily series and the public leaderboard."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from eventsourcing.application import Application

from domain.money import ZERO
from projections.balances import BALANCES, Balances
from projections.leaderboard import Leaderboard, leaderboard_report
from projections.ledger import new_tally
from projections.pnl import (
    PNL_BOTS,
    PNL_DAILY,
    PNL_OWNERS,
    Pnl,
    deals_by_ids,
    marked_deals,
    open_unrealized,
)
from projections.queries import by_ids
from projections.runner import view_as_of
from projections.store import ViewStore
from projections.tables import Row

FIGURES = ("realized_pnl", "unrealized_pnl", "fees", "deals_closed", "deals_open", "wins",
           "losses", "win_rate", "profit_factor", "max_drawdown", "capital_committed", "roi")


def portfolio(store: ViewStore, owner: str) -> dict[str, Any]:
    """The owner's P/L figures, every balance of their accounts and their open deals, marked
    at the pairs' marks (three queries)."""
    rows = store.select(PNL_OWNERS, "owner_id = ?", (owner,))
    tally = rows[0] if rows else new_tally()
    balances = store.select(BALANCES, "owner_id = ?", (owner,), order="account_id, asset")
    deals = marked_deals(store, "d.owner_id = ? AND d.status = 'open'", (owner,),
                         order="d.deal_id")
    tally["unrealized_pnl"] = sum((d["unrealized_pnl"] for d in deals), ZERO)
    return {**{k: tally[k] for k in FIGURES}, "balances": balances, "as_of": None,
            "open_deals": deals}


def portfolio_as_of(app: Application, owner: str, moment: datetime) -> dict[str, Any]:
    """The portfolio as the events recorded by ``moment`` had it: the log up to then
    replayed through the same projections into a throwaway view (costly: it reads the log),
    with the log ``position`` it reflects."""
    view = view_as_of(app, [Pnl, Balances], moment)
    try:
        return {**portfolio(view.store, owner), "as_of": moment, "position": view.position}
    finally:
        view.store.close()


def pnl_by_bot(store: ViewStore, bot_ids: Iterable[str]) -> dict[str, Row]:
    """Each bot's figures, its open deals marked at the pairs' marks."""
    rows = by_ids(store, PNL_BOTS, "bot_id", bot_ids)
    marked = open_unrealized(store, "bot_id", [r["bot_id"] for r in rows]) if rows else {}
    for row in rows:
        row["unrealized_pnl"] = marked.get(row["bot_id"], ZERO)
    return {r["bot_id"]: r for r in rows}


def pnl_by_deal(store: ViewStore, deal_ids: Iterable[str]) -> dict[str, Row]:
    """Each deal's figures, an open one marked at its pair's mark."""
    return {r["deal_id"]: r for r in deals_by_ids(store, "deal_id", deal_ids)}


def pnl_series(store: ViewStore, bot_ids: Iterable[str]) -> dict[str, list[Row]]:
    """Each bot's days with activity, oldest first."""
    found: dict[str, list[Row]] = {}
    rows = by_ids(store, PNL_DAILY, "bot_id", bot_ids)
    for row in sorted(rows, key=lambda r: (r["bot_id"], r["day"])):
        found.setdefault(row["bot_id"], []).append(row)
    return found


def leaderboard(store: ViewStore, limit: int) -> list[dict[str, Any]]:
    """Ranked bots of owners who opted in, best first."""
    return leaderboard_report(store, limit=limit)


def leaderboard_as_of(app: Application, limit: int, moment: datetime) -> list[dict[str, Any]]:
    """The leaderboard as the events recorded by ``moment`` had it (the log replayed through
    the leaderboard projection into a throwaway view, like ``portfolio_as_of``)."""
    view = view_as_of(app, [Leaderboard], moment)
    try:
        return leaderboard(view.store, limit)
    finally:
        view.store.close()
