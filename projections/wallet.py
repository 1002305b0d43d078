"""Wallet requirements: what each exchange account's running bots may still spend, beside
what the account holds (``walletRequirements``, ``tradetape wallet requirements``).

Per bot (table ``wallet_bots``): its account, quote asset and status, its worst case
(``domain.funding.worst_case_capital``: base order and every safety order, fees included)
and what its open deal has spent (buys and their fees). A running bot still needs its worst
case less that spent. Per account and asset, ``required`` is the sum over its running
bots, ``available`` the account's total of the asset (free and locked: a running bot's
resting orders are part of its own need) from the ``balances`` view, read together (so a
view as of a past moment is made of both projections, from the same events).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.application import Application

from domain.dca import DcaConfig
from domain.funding import requirement_health, worst_case_capital
from domain.money import ZERO
from projections.balances import ACCOUNTS, BALANCES, Balances
from projections.facts import Fact
from projections.framework import Projection, on
from projections.runner import view_as_of
from projections.store import ViewStore
from projections.tables import UPDATED_IN_PLACE, Changes, Row, table

WALLET_BOTS = table(
    "wallet_bots", key=("bot_id",), indexes=(("owner_id",),), fillfactor=UPDATED_IN_PLACE,
    bot_id="text", owner_id="text", account_id="text", name="text", asset="text",
    status="text", status_before_error="text", worst_case="money", spent="money",
    deal_id="text",
)

# Each funding plan's status, for the bot it is about (``Bot.fundingPlan``).
WALLET_PLANS = table(
    "wallet_plans", key=("plan_id",), indexes=(("bot_id",),),
    plan_id="text", bot_id="text", owner_id="text", account_id="text", status="text",
    opened_at="text", updated_at="text",
)
PLAN_STATUS = {"Covered": "ready_to_execute", "Uncovered": "awaiting_deposit",
               "Executed": "executed", "Cancelled": "cancelled"}


def _config(fact: Fact) -> DcaConfig:
    """The recorded configuration (Decimals stored wrapped), restored as recorded."""
    values = {name: Decimal(value["_data_"]) if isinstance(value, dict) else value
              for name, value in fact.state["config"]["_data_"].items()}
    return DcaConfig.restore(values)


class WalletRequirements(Projection):
    name = "wallet"
    description = "what each account's running bots may still spend (walletRequirements)"
    tables = (WALLET_BOTS, WALLET_PLANS)

    def __init__(self) -> None:
        self.bots: dict[str, Row] = {}
        self.deals: dict[str, str] = {}  # open deal -> bot
        self.plans: dict[str, Row] = {}
        self.dirty: dict[str, Row] = {}  # bots the batch changed: upserted once at its end

    def end_batch(self, out: Changes) -> None:
        for bot in self.dirty.values():
            out.upsert(WALLET_BOTS, bot)
        self.dirty.clear()

    def load(self, store: ViewStore, suffix: str = "") -> None:
        self.bots = {r["bot_id"]: r for r in store.select(WALLET_BOTS, suffix=suffix)}
        self.deals = {r["deal_id"]: r["bot_id"] for r in self.bots.values() if r["deal_id"]}
        self.plans = {r["plan_id"]: r for r in store.select(WALLET_PLANS, suffix=suffix)}

    def _save(self, bot: Row, out: Changes, **changes: Any) -> None:
        bot.update(changes)
        self.dirty[bot["bot_id"]] = bot

    @on("Bot.Created")
    def _created(self, fact: Fact, out: Changes) -> None:
        config = _config(fact)
        bot = {"bot_id": fact.oid, "owner_id": fact.text("owner_id"),
               "account_id": fact.text("exchange_account_id"), "name": fact.text("name"),
               "asset": config.quote_asset, "status": "created", "status_before_error": None,
               "worst_case": worst_case_capital(config), "spent": ZERO, "deal_id": None}
        self.bots[fact.oid] = self.dirty[fact.oid] = bot

    @on("Bot.ConfigEdited")
    def _edited(self, fact: Fact, out: Changes) -> None:
        config = _config(fact)
        self._save(self.bots[fact.oid], out, asset=config.quote_asset,
                   worst_case=worst_case_capital(config))

    @on("Bot.Started", "Bot.Paused", "Bot.Stopped")
    def _status(self, fact: Fact, out: Changes) -> None:
        status = {"Started": "running", "Paused": "paused", "Stopped": "stopped"}
        self._save(self.bots[fact.oid], out, status=status[fact.event_type])

    @on("Bot.ErrorRaised")
    def _failed(self, fact: Fact, out: Changes) -> None:
        bot = self.bots[fact.oid]
        self._save(bot, out, status="error", status_before_error=bot["status"])

    @on("Bot.ErrorReset")
    def _reset(self, fact: Fact, out: Changes) -> None:
        bot = self.bots[fact.oid]  # as the Bot aggregate: one that was running comes back paused
        before = bot["status_before_error"]
        self._save(bot, out, status="paused" if before == "running" else before,
                   status_before_error=None)

    @on("Deal.Opened")
    def _deal_opened(self, fact: Fact, out: Changes) -> None:
        bot = self.bots.get(fact.id_text("bot_id"))
        if bot is not None:  # a backtest's bot is in the log too; one never seen: skip
            self.deals[fact.oid] = bot["bot_id"]
            self._save(bot, out, spent=ZERO, deal_id=fact.oid)

    @on("Deal.BuyFilled")
    def _bought(self, fact: Fact, out: Changes) -> None:
        bot = self.bots.get(self.deals.get(fact.oid, ""))
        if bot is not None:  # (the busiest: no call to ``_save``)
            bot["spent"] += fact.dec("price") * fact.dec("amount") + fact.dec("fee")
            self.dirty[bot["bot_id"]] = bot

    @on("Deal.Closed", "Deal.Cancelled")
    def _deal_ended(self, fact: Fact, out: Changes) -> None:
        bot = self.bots.get(self.deals.pop(fact.oid, ""))
        if bot is not None:
            self._save(bot, out, spent=ZERO, deal_id=None)

    @on("FundingPlan.Opened")
    def _plan_opened(self, fact: Fact, out: Changes) -> None:
        plan = {"plan_id": fact.oid, "bot_id": fact.text("bot_id"),
                "owner_id": fact.text("owner_id"), "account_id": fact.text("account_id"),
                "status": "awaiting_deposit", "opened_at": fact.iso_time,
                "updated_at": fact.iso_time}
        self.plans[fact.oid] = plan
        out.upsert(WALLET_PLANS, plan)

    @on("FundingPlan.Covered", "FundingPlan.Uncovered", "FundingPlan.Executed",
        "FundingPlan.Cancelled")
    def _plan_moved(self, fact: Fact, out: Changes) -> None:
        plan = self.plans[fact.oid]
        plan.update(status=PLAN_STATUS[fact.event_type], updated_at=fact.iso_time)
        out.upsert(WALLET_PLANS, plan)


# --- reading --------------------------------------------------------------------------------


def wallet_requirements(store: ViewStore, owner: str) -> list[dict[str, Any]]:
    """Per account of ``owner`` and asset (its quote asset, and any its bots trade in):
    ``required``, ``available``, ``surplus_deficit``, ``health`` and the running ``bots``
    with what each may still spend."""
    accounts = store.select(ACCOUNTS, "owner_id = ?", (owner,), order="opened_at, account_id")
    held = {(r["account_id"], r["asset"]): r["total"]
            for r in store.select(BALANCES, "owner_id = ?", (owner,))}
    bots = store.select(WALLET_BOTS, "owner_id = ? AND status = ?", (owner, "running"),
                        order="name, bot_id")
    report = []
    for account in accounts:
        assets = [account["quote_asset"]]
        assets += sorted({b["asset"] for b in bots if b["account_id"] == account["account_id"]}
                         - set(assets))
        for asset in assets:
            mine = [b for b in bots
                    if b["account_id"] == account["account_id"] and b["asset"] == asset]
            report.append(_requirement(account, asset, mine,
                                       held.get((account["account_id"], asset), ZERO)))
    return report


def _requirement(account: Row, asset: str, bots: list[Row], available: Decimal
                 ) -> dict[str, Any]:
    needs = [{"bot_id": b["bot_id"], "name": b["name"], "worst_case": b["worst_case"],
              "spent": b["spent"], "required": max(b["worst_case"] - b["spent"], ZERO)}
             for b in bots]
    required = sum((n["required"] for n in needs), ZERO)
    return {"account_id": account["account_id"], "kind": account["kind"],
            "exchange": account["exchange"], "asset": asset, "required": required,
            "available": available, "surplus_deficit": available - required,
            "health": requirement_health(required, available), "bots": needs}


def wallet_requirements_as_of(app: Application, owner: str, moment: datetime
                              ) -> list[dict[str, Any]]:
    """The requirements as the events recorded by ``moment`` had them: the log up to then
    through the same projections (balances and this one) into a throwaway view."""
    view = view_as_of(app, [Balances, WalletRequirements], moment)
    try:
        return wallet_requirements(view.store, owner)
    finally:
        view.store.close()


def latest_plans(store: ViewStore, bot_ids: list[str]) -> dict[str, Row]:
    """Each bot's latest funding plan (id and status), for the bots that have one."""
    from projections.queries import by_ids

    found: dict[str, Row] = {}
    for row in sorted(by_ids(store, WALLET_PLANS, "bot_id", bot_ids),
                      key=lambda r: (r["opened_at"], r["plan_id"])):
        found[row["bot_id"]] = row
    return found
