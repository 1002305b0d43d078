"""Balances per owner, exchange account and asset: free, locked (by resting orders), total.

Moved only by events:
- ``ExchangeAccount.Deposited``/``Withdrawn`` add to or take from the free balance;
  ``BalanceObserved`` (a live exchange's report) replaces free and locked; a paper
  account's (the wallet monitor's record of its own events) moves nothing.
- A limit or stop order locks when it is submitted: a buy ``price × amount`` of the quote
  asset (the fee is not locked: it is paid from the free balance on each fill), a sell its
  ``amount`` of the base asset. Market orders lock nothing.
- A fill releases the lock of the part filled (all that is left once the order is filled),
  moves base and quote at the fill price, and takes the fee from the fee currency.
- A cancel, reject or expiry releases what the order still locks.
- A fee correction (``Deal.FeesCorrected``) takes the extra fee from the free balance of
  its currency, or gives a refund back to it.
- Once no open order locks an asset of an account, its locked balance is exactly zero: sums
  of 28-digit locks can round, and whatever rounding left there belongs to the free balance.

A paper account a backtest trades on has no deposits: its quote balance goes negative by
what the bot spent, which is the capital the run needed.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import Projection, on
from projections.pending_rows import PendingRows
from projections.store import ViewStore
from projections.tables import Changes, Row, table

BALANCES = table(
    "balances", key=("owner_id", "account_id", "asset"), indexes=(("account_id",),),
    owner_id="text", account_id="text", asset="text", free="money", locked="money",
    total="money", updated_at="text",
)
ACCOUNTS = table(
    "balance_accounts", key=("account_id",), indexes=(("owner_id",),),
    account_id="text", owner_id="text", kind="text", exchange="text", quote_asset="text",
    opened_at="text",
)
# The projection's working memory: orders that are not final yet, and what they lock.
OPEN_ORDERS = table(
    "balance_open_orders", key=("order_id",),
    order_id="text", owner_id="text", account_id="text", base="text", quote="text",
    side="text", type="text", price="money", amount="money", filled="money", locked="money",
)


class Balances(Projection):
    name = "balances"
    description = "free, locked and total per owner, account and asset"
    tables = (BALANCES, ACCOUNTS, OPEN_ORDERS)

    def __init__(self) -> None:
        self.balances: dict[tuple[str, str, str], Row] = {}
        self.accounts: dict[str, Row] = {}
        self.orders: dict[str, Row] = {}
        self.dirty: dict[tuple[str, str, str], Row] = {}
        self.lockers: Counter[tuple[str, str, str]] = Counter()  # open orders locking there
        self.pending_orders = PendingRows(OPEN_ORDERS)  # most never reach the table

    def load(self, store: ViewStore, suffix: str = "") -> None:
        for row in store.select(BALANCES, suffix=suffix):
            self.balances[BALANCES.key_of(row)] = row
        self.accounts = {r["account_id"]: r for r in store.select(ACCOUNTS, suffix=suffix)}
        self.orders = {r["order_id"]: r for r in store.select(OPEN_ORDERS, suffix=suffix)}
        self.lockers = Counter(_lock_key(o) for o in self.orders.values() if _locks(o))

    def _balance(self, owner: str, account: str, asset: str) -> Row:
        key = (owner, account, asset)
        row = self.balances.get(key)
        if row is None:
            row = self.balances[key] = {"owner_id": owner, "account_id": account,
                                        "asset": asset, "free": ZERO, "locked": ZERO,
                                        "total": ZERO, "updated_at": None}
        return row

    def _move(self, out: Changes, fact: Fact, owner: str, account: str, asset: str,
              free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        row = self._balance(owner, account, asset)
        row["free"] += free
        row["locked"] += locked
        row["updated_at"] = fact.iso_time
        self.dirty[(owner, account, asset)] = row

    def end_batch(self, out: Changes) -> None:
        for row in self.dirty.values():
            row["total"] = row["free"] + row["locked"]
            out.upsert(BALANCES, row)
        self.dirty.clear()
        self.pending_orders.write(self.orders, out)

    # --- accounts -------------------------------------------------------------------------

    @on("ExchangeAccount.Opened")
    def _opened(self, fact: Fact, out: Changes) -> None:
        row = {"account_id": fact.oid, "owner_id": fact.text("owner_id"),
               "kind": fact.value("kind"), "exchange": fact.text("exchange"),
               "quote_asset": fact.text("quote_asset"), "opened_at": fact.iso_time}
        self.accounts[row["account_id"]] = row
        out.insert(ACCOUNTS, row)

    @on("ExchangeAccount.Deposited", "ExchangeAccount.Withdrawn")
    def _transfer(self, fact: Fact, out: Changes) -> None:
        account = self.accounts[fact.oid]
        amount = fact.dec("amount")
        signed = amount if fact.kind.endswith("Deposited") else -amount
        self._move(out, fact, account["owner_id"], account["account_id"], fact.text("asset"),
                   free=signed)

    @on("ExchangeAccount.BalanceObserved")
    def _observed(self, fact: Fact, out: Changes) -> None:
        account = self.accounts[fact.oid]
        if account["kind"] == "paper":
            return  # the wallet monitor's record of what this account's own events made
        row = self._balance(account["owner_id"], account["account_id"], fact.text("asset"))
        self._move(out, fact, row["owner_id"], row["account_id"], row["asset"],
                   free=fact.dec("free") - row["free"], locked=fact.dec("locked") - row["locked"])

    # --- orders ---------------------------------------------------------------------------

    @on("Order.Submitted")
    def _submitted(self, fact: Fact, out: Changes) -> None:
        base, _, quote = fact.text("pair").partition("/")
        price, amount = fact.dec("price"), fact.dec("amount")
        side, kind = fact.value("side"), fact.value("type")
        order = {"order_id": fact.oid, "owner_id": fact.text("owner_id"),
                 "account_id": fact.text("exchange_account_id"), "base": base,
                 "quote": quote, "side": side, "type": kind, "price": price,
                 "amount": amount, "filled": ZERO, "locked": ZERO}
        self.orders[order["order_id"]] = order
        if _locks(order):
            order["locked"] = price * amount if side == "buy" else amount
            self.lockers[_lock_key(order)] += 1
            self._move(out, fact, order["owner_id"], order["account_id"], _locked_asset(order),
                       free=-order["locked"], locked=order["locked"])
        self.pending_orders.made(order["order_id"])

    @on("Order.Filled", "Order.TradeObserved")
    def _filled(self, fact: Fact, out: Changes) -> None:
        order = self.orders[fact.oid]
        price, amount, fee = fact.dec("price"), fact.dec("amount"), fact.dec("fee")
        order["filled"] += amount
        done = order["filled"] == order["amount"]
        owner, account = order["owner_id"], order["account_id"]
        buy = order["side"] == "buy"
        if order["locked"]:
            part = order["price"] * amount if buy else amount
            release = order["locked"] if done else min(part, order["locked"])
            order["locked"] -= release
            self._move(out, fact, owner, account, _locked_asset(order), free=release,
                       locked=-release)
        notional = price * amount
        self._move(out, fact, owner, account, order["quote"],
                   free=-notional if buy else notional)
        self._move(out, fact, owner, account, order["base"], free=amount if buy else -amount)
        if fee:
            self._move(out, fact, owner, account, fact.text("fee_currency"), free=-fee)
        self._settle(order, done, out)

    @on("Deal.FeesCorrected")
    def _fees_corrected(self, fact: Fact, out: Changes) -> None:
        """A fee correction moves the difference out of (or back into) the free balance."""
        change = fact.dec("buy_fee_change") + fact.dec("sell_fee_change")
        self._move(out, fact, fact.text("owner_id"), fact.text("exchange_account_id"),
                   fact.text("fee_currency"), free=-change)

    @on("Order.Cancelled", "Order.Rejected", "Order.Expired", "Order.Lost")
    def _ended(self, fact: Fact, out: Changes) -> None:
        order = self.orders[fact.oid]
        if order["locked"]:
            self._move(out, fact, order["owner_id"], order["account_id"], _locked_asset(order),
                       free=order["locked"], locked=-order["locked"])
            order["locked"] = ZERO
        self._settle(order, True, out)

    def _settle(self, order: Row, final: bool, out: Changes) -> None:
        order_id = order["order_id"]
        if not final:
            self.pending_orders.touched(order_id)
            return
        del self.orders[order_id]
        self.pending_orders.ended(order_id)
        if _locks(order):
            key = _lock_key(order)
            self.lockers[key] -= 1
            if not self.lockers[key]:
                del self.lockers[key]
                row = self._balance(*key)
                row["free"] += row["locked"]
                row["locked"] = ZERO
                self.dirty[key] = row


def _locks(order: Row) -> bool:
    return order["type"] != "market" and order["price"] is not None


def _locked_asset(order: Row) -> str:
    return order["quote"] if order["side"] == "buy" else order["base"]


def _lock_key(order: Row) -> tuple[str, str, str]:
    return order["owner_id"], order["account_id"], _locked_asset(order)


# --- reading --------------------------------------------------------------------------------


def balances_report(store: ViewStore, owner: str | None = None,
                    exclude_owners: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every balance (of ``owner``; without those of ``exclude_owners``)."""
    where, params = (["owner_id = ?"], [owner]) if owner else ([], [])
    where += ["owner_id <> ?"] * len(exclude_owners)
    params += list(exclude_owners)
    rows = store.select(BALANCES, " AND ".join(where), params,
                        order="owner_id, account_id, asset")
    return [{k: row[k] for k in ("owner_id", "account_id", "asset", "free", "locked", "total",
                                 "updated_at")} for row in rows]
