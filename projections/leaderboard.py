"""The public leaderboard: bots ranked by ROI, then win rate, then profit factor, then closed
deals. Only bots whose owner opted in (``Bot.LeaderboardOptedIn``) and that closed at least
one deal get a rank; the others keep their figures with ``rank`` NULL and are never shown.

Its numbers come from the same books as ``pnl`` (``ledger.py``), kept in its own tables so
each projection runs and rebuilds alone: ``leaderboard`` (one row per bot), and as working
memory ``leaderboard_open_deals``, ``leaderboard_marks``, ``leaderboard_open_orders``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from projections.facts import Fact
from projections.framework import on
from projections.ledger import BOT_COLUMNS, DEAL_COLUMNS, MARK_COLUMNS, ORDER_COLUMNS, Ledger
from projections.store import ViewStore
from projections.tables import UPDATED_IN_PLACE, Changes, Row, table

LEADERBOARD = table("leaderboard", key=("bot_id",), indexes=(("rank",),),
                    fillfactor=UPDATED_IN_PLACE, **BOT_COLUMNS,
                    opted_in="int", rank="int")
LB_DEALS = table("leaderboard_open_deals", key=("deal_id",), **DEAL_COLUMNS)
LB_MARKS = table("leaderboard_marks", key=("pair",), **MARK_COLUMNS)
LB_ORDERS = table("leaderboard_open_orders", key=("order_id",), **ORDER_COLUMNS)
INFINITY = Decimal("Infinity")
PUBLIC = ("rank", "bot_id", "name", "pair", "roi", "win_rate", "profit_factor",
          "deals_closed", "realized_pnl", "capital_committed", "max_drawdown")


class Leaderboard(Ledger):
    name = "leaderboard"
    description = "bots of owners who opted in, ranked by ROI"
    tables = (LEADERBOARD, LB_DEALS, LB_MARKS, LB_ORDERS)
    bots_table, deals_table, orders_table, marks_table = LEADERBOARD, LB_DEALS, LB_ORDERS, LB_MARKS
    keep_closed_deals = False

    def bot(self, bot_id: str, owner_id: str | None = None) -> Row:
        row = super().bot(bot_id, owner_id)
        row.setdefault("opted_in", 0)
        row.setdefault("rank", None)
        return row

    def write_tally(self, tally: Row, out: Changes) -> None:
        tally.setdefault("opted_in", 0)  # a bot a leader's books made (``shared_books.py``)
        tally.setdefault("rank", None)
        out.upsert(LEADERBOARD, tally)

    @on("Bot.LeaderboardOptedIn", "Bot.LeaderboardOptedOut", "Bot.Archived")
    def _opt(self, fact: Fact, out: Changes) -> None:
        """A deleted bot leaves the leaderboard, as if its owner had opted out."""
        bot = self.bot(fact.oid)
        bot["opted_in"] = int(fact.kind.endswith("OptedIn"))
        self.touch(bot)

    def after_batch(self, out: Changes) -> None:
        # Ranks move only when a ranked bot's figures, or who is ranked, changed: a batch
        # of unlisted bots sorts nothing (a pass over 10,000 bots cost more than the batch).
        if not any(t.get("rank") is not None or (t.get("opted_in") and t["deals_closed"])
                   for t in self.dirty.values()):
            return
        ranked = sorted((b for b in self.bots.values() if b["opted_in"] and b["deals_closed"]),
                        key=_standing)
        ranks = {b["bot_id"]: n for n, b in enumerate(ranked, start=1)}
        for bot in self.bots.values():
            rank = ranks.get(bot["bot_id"])
            if bot["rank"] != rank:
                bot["rank"] = rank
                out.upsert(LEADERBOARD, bot)


def _standing(bot: Row) -> tuple:
    """Sort key: best first; a bot that never lost has an infinite profit factor."""
    factor = bot["profit_factor"]
    if factor is None:
        factor = INFINITY if bot["gross_profit"] else Decimal(0)
    return (-(bot["roi"] or 0), -(bot["win_rate"] or 0), -factor, -bot["deals_closed"],
            bot["bot_id"])


def leaderboard_report(store: ViewStore, limit: int = 100) -> list[dict[str, Any]]:
    rows = store.select(LEADERBOARD, "rank IS NOT NULL", order="rank", limit=limit)
    return [{k: row[k] for k in PUBLIC} for row in rows]
