"""The billing ledger: every charge, refund and credit as double entry. Each movement debits
one account and credits another by the same amount, so every currency's accounts sum to
zero and each account's balance (debits − credits) is the sum of its entries.

Accounts:
- ``stripe:cash``: money Stripe holds for us (debit-normal);
- ``revenue:subscriptions``: plans sold (credit-normal); ``revenue:refunds`` what was given
  back of them (debit-normal, against revenue);
- ``wallet:<user>``: what a user prepaid and has not spent (credit-normal: we owe it).

Moved by: ``Subscription.InvoicePaid`` (a card payment: cash ← revenue; a wallet payment is
the wallet's ``Debited``), ``Subscription.Refunded`` (refunds ← cash),
``Wallet.Credited`` (cash ← wallet), ``Wallet.Debited`` (a renewal: wallet ← revenue; a
refund: wallet ← cash). Ready for a revenue split: each entry names its user and reference.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import Projection, on
from projections.store import ViewStore
from projections.tables import Changes, Row, table

CASH, REVENUE, REFUNDS = "stripe:cash", "revenue:subscriptions", "revenue:refunds"
ENTRIES = table(
    "billing_entries", key=("position", "line"), indexes=(("month",), ("user_id",)),
    position="int", line="int", at="text", month="text", user_id="text", kind="text",
    reference="text", account="text", currency="text", debit="money", credit="money",
)
ACCOUNTS = table(
    "billing_accounts", key=("account", "currency"),
    account="text", currency="text", debit="money", credit="money", balance="money",
)
OWNERS = table("billing_owners", key=("aggregate_id",), aggregate_id="text", user_id="text")


class BillingLedger(Projection):
    name = "billing_ledger"
    description = "double-entry ledger of charges, refunds and wallet credits"
    tables = (ENTRIES, ACCOUNTS, OWNERS)

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.accounts: dict[tuple[str, str], Row] = {}
        self.dirty: dict[tuple[str, str], Row] = {}

    def load(self, store: ViewStore, suffix: str = "") -> None:
        self.owners = {r["aggregate_id"]: r["user_id"]
                       for r in store.select(OWNERS, suffix=suffix)}
        self.accounts = {ACCOUNTS.key_of(r): r for r in store.select(ACCOUNTS, suffix=suffix)}

    def end_batch(self, out: Changes) -> None:
        for row in self.dirty.values():
            row["balance"] = row["debit"] - row["credit"]
            out.upsert(ACCOUNTS, row)
        self.dirty.clear()

    @on("Subscription.Started", "Wallet.Opened")
    def _owner(self, fact: Fact, out: Changes) -> None:
        self.owners[fact.oid] = fact.text("user_id")
        out.insert(OWNERS, {"aggregate_id": fact.oid, "user_id": fact.text("user_id")})

    @on("Subscription.InvoicePaid")
    def _invoice_paid(self, fact: Fact, out: Changes) -> None:
        if fact.text("method") == "card":
            self._move(fact, out, CASH, REVENUE, "invoice_paid", fact.text("invoice"))

    @on("Subscription.Refunded")
    def _refunded(self, fact: Fact, out: Changes) -> None:
        self._move(fact, out, REFUNDS, CASH, "refund", fact.text("reference"))

    @on("Wallet.Credited")
    def _credited(self, fact: Fact, out: Changes) -> None:
        wallet = f"wallet:{self.owners[fact.oid]}"
        self._move(fact, out, CASH, wallet, "top_up", fact.text("reference"))

    @on("Wallet.Debited")
    def _debited(self, fact: Fact, out: Changes) -> None:
        wallet = f"wallet:{self.owners[fact.oid]}"
        if fact.text("reason") == "refund":
            self._move(fact, out, wallet, CASH, "wallet_refund", fact.text("reference"))
        else:
            self._move(fact, out, wallet, REVENUE, "wallet_payment", fact.text("reference"))

    def _move(self, fact: Fact, out: Changes, debit: str, credit: str, kind: str,
              reference: str) -> None:
        amount, currency = fact.dec("amount"), fact.text("currency")
        common = {"position": fact.position, "at": fact.iso_time, "month": fact.iso_time[:7],
                  "user_id": self.owners.get(fact.oid), "kind": kind,
                  "reference": reference, "currency": currency}
        for line, (account, dr, cr) in enumerate(((debit, amount, ZERO),
                                                   (credit, ZERO, amount))):
            out.insert(ENTRIES, {**common, "line": line, "account": account, "debit": dr,
                                 "credit": cr})
            row = self.accounts.setdefault((account, currency), {
                "account": account, "currency": currency, "debit": ZERO, "credit": ZERO,
                "balance": ZERO})
            row["debit"] += dr
            row["credit"] += cr
            self.dirty[(account, currency)] = row


def billing_report(store: ViewStore, month: str, as_of: datetime | None = None
                   ) -> dict[str, Any]:
    """A month's figures per currency (from the entries at or before ``as_of``): revenue
    from plans, refunds, net revenue, top-ups, wallet refunds, cash in; and every
    account's balance then."""
    where, params = "month = ?", [month]
    if as_of is not None:
        where, params = where + " AND at <= ?", [*params, as_of.isoformat()]
    rows = store.select(ENTRIES, where, params)
    figures: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        f = figures.setdefault(row["currency"], dict.fromkeys(
            ("revenue", "refunds", "net_revenue", "top_ups", "wallet_refunds", "cash_in"),
            ZERO))
        if row["account"] == REVENUE:
            f["revenue"] += row["credit"] - row["debit"]
        elif row["account"] == REFUNDS:
            f["refunds"] += row["debit"] - row["credit"]
        elif row["account"] == CASH:
            f["cash_in"] += row["debit"] - row["credit"]
        if row["kind"] == "top_up" and row["line"] == 0:
            f["top_ups"] += row["debit"]
        if row["kind"] == "wallet_refund" and row["line"] == 0:
            f["wallet_refunds"] += row["debit"]
    for f in figures.values():
        f["net_revenue"] = f["revenue"] - f["refunds"]
    return {"month": month, "currencies": dict(sorted(figures.items())),
            "entries": len(rows)}


def account_balances(store: ViewStore) -> list[Row]:
    return sorted(store.select(ACCOUNTS), key=lambda r: (r["currency"], r["account"]))
