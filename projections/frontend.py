"""Views for front ends: bot list and detail, deal list, order list (tables in
``frontend_tables.py``; the order list's handlers in ``frontend_orders.py``).

Rows of finished deals and final orders never change again, so only bots, open deals and
live orders are kept in memory.

A bot counts the deals it started (``deals_opened``), those that ended with a sale
(``deals_closed``: a ``Deal.Closed``, with a realized P/L) and those given up without
buying anything (``deals_cancelled``: a ``Deal.Cancelled``, e.g. its base order refused).
"""

from __future__ import annotations

from typing import Any

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import Projection, on
from projections.frontend_orders import OrderRows
from projections.frontend_tables import (
    FE_BOTS,
    FE_DEALS,
    FE_DRIFT,
    FE_ORDERS,
    FE_POSITIONS,
    O_CLIENT,
    O_OWNER,
    O_PAIR,
    drift_row,
)
from projections.store import ViewStore
from projections.tables import OPEN_DEALS, Changes, Row

BOT_STATUS = {"Bot.Started": "running", "Bot.Paused": "paused", "Bot.Stopped": "stopped",
              "Bot.RiskPaused": "paused", "Bot.RiskResumed": "running"}


class FrontEnd(OrderRows, Projection):
    name = "frontend"
    description = "bot, deal and order lists for front ends"
    tables = (FE_BOTS, FE_DEALS, FE_ORDERS, FE_DRIFT, FE_POSITIONS)

    def __init__(self) -> None:
        self.bots: dict[str, Row] = {}
        self.deals: dict[str, Row] = {}
        # Rows the batch changed, by id: written once at its end.
        self.dirty_bots: dict[str, Row] = {}
        self.dirty_deals: dict[str, Row] = {}
        OrderRows.__init__(self)

    def end_batch(self, out: Changes) -> None:
        for row in self.dirty_bots.values():
            out.upsert(FE_BOTS, row)
        for row in self.dirty_deals.values():
            if row["units_bought"]:
                # Once per batch, not at each buy: the same division of the same sums.
                row["average_entry"] = row["cost"] / row["units_bought"]
            out.upsert(FE_DEALS, row)
        self.dirty_bots.clear()
        self.dirty_deals.clear()
        self.write_orders(out)

    def load(self, store: ViewStore, suffix: str = "") -> None:
        self.bots = {r["bot_id"]: r for r in store.select(FE_BOTS, suffix=suffix)}
        self.deals = {r["deal_id"]: r for r in
                      store.select(FE_DEALS, OPEN_DEALS, suffix=suffix)}
        self.load_orders(store, suffix)

    @on("Position.Opened", "PositionExit.Attached")
    def _position_owned(self, fact: Fact, out: Changes) -> None:
        out.insert(FE_POSITIONS, {"aggregate_id": fact.oid, "owner_id": fact.text("owner_id"),
                                  "kind": fact.kind.partition(".")[0]})

    # --- drift: what live exchanges said apart from what we asked --------------------------

    @on("ExchangeAccount.DriftDetected", "ExchangeAccount.DriftResolved",
        "ExchangeAccount.StrayOrderFound")
    def _account_drift(self, fact: Fact, out: Changes) -> None:
        kind = {"ExchangeAccount.DriftDetected": "drift_detected",
                "ExchangeAccount.DriftResolved": "drift_resolved",
                "ExchangeAccount.StrayOrderFound": "stray_order_cancelled"}[fact.kind]
        state = fact.state
        out.insert(FE_DRIFT, drift_row(
            fact, kind, account_id=fact.oid,
            asset=fact.text("asset") if "asset" in state else None,
            expected=fact.dec("expected") if "expected" in state else None,
            observed=fact.dec("observed") if "observed" in state else None,
            client_order_id=fact.text("client_order_id") if "client_order_id" in state
            else None, pair=fact.text("pair") if "pair" in state else None))

    def _order_lost(self, fact: Fact, order: list[Any], out: Changes) -> None:
        """(Called by ``_order_status``, which handles Order.Lost as a final status.)"""
        out.insert(FE_DRIFT, drift_row(
            fact, "order_lost", owner_id=order[O_OWNER], order_id=fact.oid,
            client_order_id=order[O_CLIENT], pair=order[O_PAIR],
            reason=fact.text("reason")))

    # --- bots -----------------------------------------------------------------------------

    def _bot(self, fact: Fact, out: Changes, bot_id: str | None = None,
             **changes: Any) -> Row:
        bot = self.bots[bot_id or fact.oid]
        bot.update(changes, updated_at=fact.iso_time)
        self.dirty_bots[bot["bot_id"]] = bot
        return bot

    @on("Bot.Created")
    def _bot_created(self, fact: Fact, out: Changes) -> None:
        mode = fact.value("mode")
        bot = {"bot_id": fact.oid, "owner_id": fact.text("owner_id"),
               "name": fact.text("name"), "status": "created", "mode": mode,
               "stage": "live_trading" if mode == "live" else "paper_training",
               "pair": fact.state["config"]["_data_"]["pair"], "config_version": 1,
               "exchange_account_id": fact.text("exchange_account_id"), "open_deal_id": None,
               "deals_opened": 0, "deals_closed": 0, "deals_cancelled": 0,
               "error_reason": None, "warning": None,
               "status_before_error": None, "leaderboard_opt_in": 0, "created_at": fact.iso_time,
               "updated_at": fact.iso_time, "archived": 0}
        self.bots[bot["bot_id"]] = bot
        out.insert(FE_BOTS, bot)

    @on(*BOT_STATUS)
    def _bot_status(self, fact: Fact, out: Changes) -> None:
        if fact.kind == "Bot.RiskPaused":  # the reason shows beside the status
            self._bot(fact, out, status="paused", warning=fact.text("reason"))
        else:
            self._bot(fact, out, status=BOT_STATUS[fact.kind])

    @on("Bot.RiskLimitReached")
    def _bot_risk_refused(self, fact: Fact, out: Changes) -> None:
        self._bot(fact, out, warning=f"RISK_LIMIT_REACHED: {fact.text('message')}")

    @on("Bot.ErrorRaised")
    def _bot_failed(self, fact: Fact, out: Changes) -> None:
        before = self.bots[fact.oid]["status"]
        self._bot(fact, out, status="error", error_reason=fact.text("reason"),
                  status_before_error=before)

    @on("Bot.ErrorReset")
    def _bot_reset(self, fact: Fact, out: Changes) -> None:
        before = self.bots[fact.oid]["status_before_error"]
        self._bot(fact, out, status="paused" if before == "running" else before,
                  error_reason=None, status_before_error=None)

    @on("Bot.ConfigEdited")
    def _bot_edited(self, fact: Fact, out: Changes) -> None:
        bot = self.bots[fact.oid]
        self._bot(fact, out, config_version=bot["config_version"] + 1,
                  pair=fact.state["config"]["_data_"]["pair"])

    @on("Bot.PromotedToLive")
    def _bot_promoted(self, fact: Fact, out: Changes) -> None:
        account = fact.state.get("exchange_account_id")  # v1 events have none
        moved = {} if account is None else {"exchange_account_id": account}
        self._bot(fact, out, mode="live", stage="live_trading", **moved)

    @on("Bot.DealStarted")
    def _bot_deal_started(self, fact: Fact, out: Changes) -> None:
        bot, deal_id = self.bots[fact.oid], fact.id_text("deal_id")
        # a new deal clears the last warning, but not one its own opening step recorded
        # (a safety order a risk limit refused: the deal's events come first)
        warning = bot.get("warning")
        self._bot(fact, out, open_deal_id=deal_id, deals_opened=bot["deals_opened"] + 1,
                  warning=warning if warning and deal_id in warning else None)

    @on("Bot.DealFinished")
    def _bot_deal_finished(self, fact: Fact, out: Changes) -> None:
        # Closed or cancelled: the deal's own event says which (counted in _deal_changed).
        self._bot(fact, out, open_deal_id=None)

    @on("Bot.Renamed")
    def _bot_renamed(self, fact: Fact, out: Changes) -> None:
        self._bot(fact, out, name=fact.text("name"))

    @on("Bot.Archived")
    def _bot_archived(self, fact: Fact, out: Changes) -> None:
        self._bot(fact, out, archived=1)

    @on("Bot.LeaderboardOptedIn", "Bot.LeaderboardOptedOut")
    def _bot_listed(self, fact: Fact, out: Changes) -> None:
        self._bot(fact, out, leaderboard_opt_in=int(fact.kind.endswith("OptedIn")))

    # --- deals ----------------------------------------------------------------------------

    @on("Deal.OrderRejected")
    def _deal_order_rejected(self, fact: Fact, out: Changes) -> None:
        deal = self.deals.get(fact.oid)
        if deal is None or deal["bot_id"] not in self.bots:
            return
        n = fact.text("safety_order")
        name = f"safety order {n}" if n else fact.text("purpose").replace("_", " ")
        self._bot(fact, out, warning=f"{name} cannot be placed: {fact.text('reason')}",
                  bot_id=deal["bot_id"])

    @on("Deal.RiskLimitReached")
    def _deal_risk_refused(self, fact: Fact, out: Changes) -> None:
        deal = self.deals.get(fact.oid)
        if deal is not None and deal["bot_id"] in self.bots:
            self._bot(fact, out, bot_id=deal["bot_id"], warning=(
                f"safety order {fact.text('safety_order')} of deal {fact.oid} not placed: "
                f"RISK_LIMIT_REACHED: {fact.text('message')}"))

    @on("Deal.Opened")
    def _deal_opened(self, fact: Fact, out: Changes) -> None:
        deal = {"deal_id": fact.oid, "bot_id": fact.id_text("bot_id"),
                "owner_id": fact.text("owner_id"), "pair": fact.text("pair"),
                "status": "open", "opened_at": fact.iso_time, "closed_at": None,
                "close_reason": None, "units": ZERO, "units_bought": ZERO, "cost": ZERO,
                "average_entry": None, "take_profit_price": None, "stop_loss_price": None,
                "safety_orders_used": 0, "realized_pnl": None, "updated_at": fact.iso_time}
        self.deals[deal["deal_id"]] = deal
        out.insert(FE_DEALS, deal)

    @on("Deal.StepSold")
    def _deal_step_sold(self, fact: Fact, out: Changes) -> None:
        deal = self.deals[fact.oid]
        deal.update(units=deal["units"] - fact.dec("amount"), updated_at=fact.iso_time)
        self.dirty_deals[deal["deal_id"]] = deal

    # One handler per kind of the deal's busiest events (no test of the kind per event).

    @on("Deal.BuyFilled")
    def _deal_bought(self, fact: Fact, out: Changes) -> None:
        deal = self.deals[fact.oid]
        amount = fact.dec("amount")
        deal["units"] += amount
        deal["units_bought"] += amount
        deal["cost"] += fact.dec("price") * amount  # (average_entry: at the batch's end)
        deal["safety_orders_used"] = max(deal["safety_orders_used"],
                                         fact.state["safety_order"])
        deal["updated_at"] = fact.iso_time
        self.dirty_deals[fact.oid] = deal

    @on("Deal.TargetsMoved")
    def _deal_targets_moved(self, fact: Fact, out: Changes) -> None:
        deal = self.deals[fact.oid]
        deal["take_profit_price"] = fact.dec("take_profit_price")
        deal["stop_loss_price"] = fact.dec("stop_loss_price")
        deal["updated_at"] = fact.iso_time
        self.dirty_deals[fact.oid] = deal

    @on("Deal.Closed", "Deal.Cancelled")
    def _deal_ended(self, fact: Fact, out: Changes) -> None:
        deal = self.deals.pop(fact.oid)
        if fact.kind == "Deal.Closed":
            deal.update(status="closed", close_reason=fact.value("reason"),
                        closed_at=fact.iso_time, realized_pnl=fact.dec("realized_pnl"))
            deal["units"] -= fact.dec("amount")
        else:
            deal.update(status="cancelled", closed_at=fact.iso_time)
        deal["updated_at"] = fact.iso_time
        self.dirty_deals[fact.oid] = deal
        self._count_finished(deal, fact)

    @on("Deal.FeesCorrected")
    def _deal_corrected(self, fact: Fact, out: Changes) -> None:
        pnl = fact.dec("realized_pnl")
        if pnl is None:
            return  # an open deal shows no realized P/L yet
        deal = self.deals.get(fact.oid)
        if deal is not None:
            deal.update(realized_pnl=pnl, updated_at=fact.iso_time)
            self.dirty_deals[deal["deal_id"]] = deal
        else:  # finished in an earlier batch or this one: the patch goes after its write
            out.patch(FE_DEALS, (fact.oid,), realized_pnl=pnl, updated_at=fact.iso_time)

    def _count_finished(self, deal: Row, fact: Fact) -> None:
        """A deal of a bot ended: with a sale (closed) or without buying (cancelled)."""
        bot = self.bots.get(deal["bot_id"])
        if bot is None:
            return
        column = "deals_closed" if deal["status"] == "closed" else "deals_cancelled"
        bot.update({column: bot[column] + 1}, updated_at=fact.iso_time)
        self.dirty_bots[bot["bot_id"]] = bot


# --- reading --------------------------------------------------------------------------------


def bot_list(store: ViewStore, owner: str) -> list[Row]:
    return store.select(FE_BOTS, "owner_id = ?", (owner,), order="created_at, bot_id")


def deal_list(store: ViewStore, bot_id: str, limit: int = 50) -> list[Row]:
    return store.select(FE_DEALS, "bot_id = ?", (bot_id,), order="opened_at DESC", limit=limit)


def order_list(store: ViewStore, deal_id: str) -> list[Row]:
    return store.select(FE_ORDERS, "deal_id = ?", (deal_id,), order="created_at, order_id")
