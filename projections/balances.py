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

from decimal import Decimal
from typing import Any

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import Projection, on
from projections.list_rows import column_at, list_writer
from projections.pending_rows import PendingRows
from projections.store import ViewStore
from projections.tables import UPDATED_IN_PLACE, Changes, Row, table

BALANCES = table(
    "balances", key=("owner_id", "account_id", "asset"), indexes=(("account_id",),),
    fillfactor=UPDATED_IN_PLACE,
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
# A live order is a list in OPEN_ORDERS' column order (``list_rows``): every order of the log
# makes one, and most end within their batch.
OWNER, ACCOUNT, BASE, QUOTE, SIDE, TYPE, PRICE, AMOUNT, FILLED, LOCKED = column_at(
    OPEN_ORDERS, "owner_id", "account_id", "base", "quote", "side", "type", "price",
    "amount", "filled", "locked")
_order_values = list_writer(OPEN_ORDERS)


class Balances(Projection):
    name = "balances"
    description = "free, locked and total per owner, account and asset"
    tables = (BALANCES, ACCOUNTS, OPEN_ORDERS)

    def __init__(self) -> None:
        self.balances: dict[tuple[str, str, str], Row] = {}
        self.accounts: dict[str, Row] = {}
        self.orders: dict[str, list[Any]] = {}
        # Each live order's quote and base balance rows, found once when it is submitted
        # (not by key at each of its moves: a fill moves three or four balances).
        self.legs: dict[str, tuple[Row, Row]] = {}
        # The same by owner, account and pair, with the pair's base and quote (a bot's
        # orders all trade one pair: one look-up an order, not a split and two).
        self.pairs: dict[tuple[str, str, str], tuple[tuple[Row, Row], str, str]] = {}
        self.dirty: dict[int, Row] = {}  # balance rows the batch moved, by identity
        self.lockers: dict[int, int] = {}  # open orders locking there, by balance row
        self.pending_orders = PendingRows(OPEN_ORDERS)  # most never reach the table

    def load(self, store: ViewStore, suffix: str = "") -> None:
        for row in store.select(BALANCES, suffix=suffix):
            self.balances[BALANCES.key_of(row)] = row
        self.accounts = {r["account_id"]: r for r in store.select(ACCOUNTS, suffix=suffix)}
        names = OPEN_ORDERS.column_names
        self.orders = {r["order_id"]: [r[c] for c in names]
                       for r in store.select(OPEN_ORDERS, suffix=suffix)}
        self.legs = {order_id: self._legs(order) for order_id, order in self.orders.items()}
        self.pairs = {}
        self.lockers = {}
        for order_id, order in self.orders.items():
            if _locks(order):
                self._lock_more(self._lock_row(order_id, order))

    def _balance(self, owner: str, account: str, asset: str) -> Row:
        key = (owner, account, asset)
        row = self.balances.get(key)
        if row is None:
            row = self.balances[key] = {"owner_id": owner, "account_id": account,
                                        "asset": asset, "free": ZERO, "locked": ZERO,
                                        "total": ZERO, "updated_at": None}
        return row

    def _legs(self, order: list[Any]) -> tuple[Row, Row]:
        owner, account = order[OWNER], order[ACCOUNT]
        return (self._balance(owner, account, order[QUOTE]),
                self._balance(owner, account, order[BASE]))

    def _lock_row(self, order_id: str, order: list[Any]) -> Row:
        """The balance an order locks: its quote for a buy, its base for a sell."""
        return self.legs[order_id][order[SIDE] != "buy"]

    def _lock_more(self, row: Row) -> None:
        self.lockers[id(row)] = self.lockers.get(id(row), 0) + 1

    def _move(self, row: Row, at: str, free: Decimal, locked: Decimal) -> None:
        """Every move adds to both (``locked`` often ZERO: the sum keeps Decimal's rounding
        and exponent exactly as it always was)."""
        row["free"] += free
        row["locked"] += locked
        row["updated_at"] = at
        self.dirty[id(row)] = row

    def end_batch(self, out: Changes) -> None:
        for row in self.dirty.values():
            row["total"] = row["free"] + row["locked"]
            out.upsert(BALANCES, row)
        self.dirty.clear()
        self._write_orders(out)

    def _write_orders(self, out: Changes) -> None:
        """The open orders the batch made, changed or ended (as ``PendingRows.write``, the
        rows lists): each key one way only."""
        pending, live, storable = self.pending_orders, self.orders, OPEN_ORDERS.storable
        out.insert_values(OPEN_ORDERS, [storable(_order_values(live[key]))
                                        for key in pending.new])
        replaced = []
        for key in pending.changed - pending.new:
            order = live.get(key)
            if order is None:
                out.delete(OPEN_ORDERS, (key,))
            else:
                replaced.append(storable(_order_values(order)))
        out.upsert_values(OPEN_ORDERS, replaced)
        pending.new.clear()
        pending.changed.clear()

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
        row = self._balance(account["owner_id"], account["account_id"], fact.text("asset"))
        self._move(row, fact.iso_time, signed, ZERO)

    @on("ExchangeAccount.BalanceObserved")
    def _observed(self, fact: Fact, out: Changes) -> None:
        account = self.accounts[fact.oid]
        if account["kind"] == "paper":
            return  # the wallet monitor's record of what this account's own events made
        row = self._balance(account["owner_id"], account["account_id"], fact.text("asset"))
        self._move(row, fact.iso_time, fact.dec("free") - row["free"],
                   fact.dec("locked") - row["locked"])

    # --- orders ---------------------------------------------------------------------------

    @on("Order.Submitted")
    def _submitted(self, fact: Fact, out: Changes) -> None:
        # Every order of the log comes here: its plain fields read from the state at once
        # (what ``fact.text`` and ``fact.value`` give, without a call per field).
        state, order_id = fact.state, fact.oid
        owner, account = state["owner_id"], state["exchange_account_id"]
        at = (owner, account, state["pair"])
        known = self.pairs.get(at)
        if known is None:
            base, _, quote = at[2].partition("/")
            known = self.pairs[at] = ((self._balance(owner, account, quote),
                                       self._balance(owner, account, base)), base, quote)
        legs, base, quote = known
        price, amount = fact.dec("price"), fact.dec("amount")
        side, kind = state["side"], state["type"]
        side = side["_data_"] if side.__class__ is dict else side
        order = [order_id, owner, account, base, quote, side,
                 kind["_data_"] if kind.__class__ is dict else kind, price, amount, ZERO,
                 ZERO]
        self.orders[order_id] = order
        self.legs[order_id] = legs
        if order[TYPE] != "market" and price is not None:  # (``_locks``)
            locked = order[LOCKED] = price * amount if side == "buy" else amount
            row = legs[side != "buy"]
            # ``_lock_more`` and ``_move``, written out (most orders lock)
            lockers, at = self.lockers, id(row)
            lockers[at] = lockers.get(at, 0) + 1
            row["free"] += -locked
            row["locked"] += locked
            row["updated_at"] = fact.iso_time
            self.dirty[at] = row
        self.pending_orders.new.add(order_id)  # (``PendingRows.made``)

    @on("Order.Filled", "Order.TradeObserved")
    def _filled(self, fact: Fact, out: Changes) -> None:
        order_id = fact.oid
        order = self.orders[order_id]
        price, amount, fee = fact.dec("price"), fact.dec("amount"), fact.dec("fee")
        order[FILLED] += amount
        done = order[FILLED] == order[AMOUNT]
        buy = order[SIDE] == "buy"
        quote, base = self.legs[order_id]
        at, move = fact.iso_time, self._move
        locked = order[LOCKED]
        if locked:
            part = order[PRICE] * amount if buy else amount
            release = locked if done else min(part, locked)
            order[LOCKED] -= release
            move(quote if buy else base, at, release, -release)
        # Both legs moved as ``_move`` moves them, written out (every fill makes both).
        notional, dirty = price * amount, self.dirty
        quote["free"] += -notional if buy else notional
        quote["locked"] += ZERO
        quote["updated_at"] = at
        dirty[id(quote)] = quote
        base["free"] += amount if buy else -amount
        base["locked"] += ZERO
        base["updated_at"] = at
        dirty[id(base)] = base
        if fee:
            currency = fact.state["fee_currency"]
            move(quote if currency == order[QUOTE] else self._balance(
                order[OWNER], order[ACCOUNT], currency), at, -fee, ZERO)
        if done:
            self._ended_order(order_id, order)
        else:
            self.pending_orders.touched(order_id)

    @on("Deal.FeesCorrected")
    def _fees_corrected(self, fact: Fact, out: Changes) -> None:
        """A fee correction moves the difference out of (or back into) the free balance."""
        change = fact.dec("buy_fee_change") + fact.dec("sell_fee_change")
        row = self._balance(fact.text("owner_id"), fact.text("exchange_account_id"),
                            fact.text("fee_currency"))
        self._move(row, fact.iso_time, -change, ZERO)

    @on("Order.Cancelled", "Order.Rejected", "Order.Expired", "Order.Lost")
    def _ended(self, fact: Fact, out: Changes) -> None:
        order_id = fact.oid
        order = self.orders[order_id]
        locked = order[LOCKED]
        if locked:
            self._move(self._lock_row(order_id, order), fact.iso_time, locked, -locked)
            order[LOCKED] = ZERO
        self._ended_order(order_id, order)

    def _ended_order(self, order_id: str, order: list[Any]) -> None:
        """An order is final: gone from memory; once no open order locks its locked
        balance, whatever rounding left locked there goes to the free balance."""
        del self.orders[order_id]
        legs = self.legs.pop(order_id)
        self.pending_orders.ended(order_id)
        if _locks(order):
            row = legs[order[SIDE] != "buy"]
            lockers, at = self.lockers, id(row)
            left = lockers[at] - 1
            if left:
                lockers[at] = left
            else:
                del lockers[at]
                row["free"] += row["locked"]
                row["locked"] = ZERO
                self.dirty[at] = row


def _locks(order: list[Any]) -> bool:
    return order[TYPE] != "market" and order[PRICE] is not None


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
