"""The bookkeeping behind ``pnl`` and ``leaderboard``: deals, per-bot tallies and the capital
each bot commits, from Bot, Deal and Order events.

- A deal's numbers follow its events exactly as the Deal aggregate's do (same Decimal
  operations in the same order), so its realized P/L is the one the Deal recorded.
- Unrealized P/L of an open deal is ``units × mark − cost − buy fees`` (plus what take profit
  steps sold, net of their fees); the mark of a pair is the price of its last fill seen in the
  log (an order's or a deal's), kept in the marks table. It is worked out when read
  (:func:`unrealized`), never stored: a stored figure would have to be rewritten for every
  open deal of a pair, its bot and its owner at each fill of the pair (about 50,000 rows and
  3.5 s a batch at 10,000 bots). The rows hold what does not depend on the market (units,
  cost, fees, proceeds), so a batch writes what its events change.
- Capital committed now = open deals' cost and buy fees + ``price × amount`` still locked
  by the bot's resting buy orders (fees not included). The capital committed of a bot is the
  most it ever had committed at the end of a step: a step is the run of events sharing one
  correlation id (one engine decision, saved atomically); inside a step a fill can show on
  the deal before its order releases the lock. ROI = realized P/L / capital committed.
- Max drawdown is of cumulative realized P/L, from its running peak (starting at 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import Projection, on
from projections.pending_rows import PendingRows
from projections.reader import uuid_text
from projections.store import ViewStore
from projections.tables import OPEN_DEALS, Changes, Row, Table
from projections.tallies import TALLY_COLUMNS, close_into, derive, new_tally, recount

DEAL_COLUMNS = dict(
    deal_id="text", bot_id="text", owner_id="text", pair="text", status="text",
    close_reason="text", opened_at="text", closed_at="text", duration_seconds="int",
    units="money", units_bought="money", cost="money", buy_fees="money", sell_fees="money",
    fees="money", proceeds="money", average_entry="money", realized_pnl="money",
    mark_price="money", safety_orders_used="int",
)
BOT_COLUMNS = dict(bot_id="text", owner_id="text", name="text", pair="text",
                   last_closed_at="text", **TALLY_COLUMNS)
BOTS_SHAPE = tuple(BOT_COLUMNS.items())  # ``Table.columns`` of a bots table of these alone
MARK_COLUMNS = dict(pair="text", price="money", marked_at="text")
ORDER_COLUMNS = dict(
    order_id="text", bot_id="text", pair="text", side="text", type="text", price="money",
    amount="money", filled="money", locked="money",
)


class Ledger(Projection):
    """Base of projections that keep deal, bot and capital books. Subclasses name the tables
    and add what they show (``pnl``: owners and days; ``leaderboard``: ranks)."""

    bots_table: ClassVar[Table]
    deals_table: ClassVar[Table]
    orders_table: ClassVar[Table]
    marks_table: ClassVar[Table]
    keep_closed_deals: ClassVar[bool] = True

    def __init__(self) -> None:
        self.bots: dict[str, Row] = {}
        self.deals: dict[str, Row] = {}  # open deals (and closed ones touched this batch)
        # The open deals by bot and by pair: a batch touches only its bots' and pairs' deals
        # (a scan of every open deal per changed bot cost 45 s of a 65 s step at 5,000 bots).
        self.open_by_bot: dict[str, dict[str, Row]] = {}
        self.open_by_pair: dict[str, dict[str, Row]] = {}
        # Counts every change to which deals are open (a follower reads its leader's): what
        # equity's sorted lists of an owner's open deals are made from stays valid until then.
        self.open_epoch = 0
        self.orders: dict[str, Row] = {}
        self.marks: dict[str, Row] = {}
        self.step: str | None = None
        self.pending: dict[int, Row] = {}  # tallies changed in the current step, by id()
        self.dirty: dict[int, Row] = {}  # tallies to write at the end of the batch
        self.dirty_deals: set[str] = set()
        self.new_deals: set[str] = set()
        self.dirty_pairs: set[str] = set()
        self.pending_orders = PendingRows(self.orders_table)  # most never reach the table
        # Books shared with other ledgers run together (``shared_books.py``): a follower
        # reads its ``leader``'s books and writes what the leader's batch ``settled``.
        self.leader: Ledger | None = None
        self.followers: list[Ledger] = []
        self.settled: Settled | None = None

    def load(self, store: ViewStore, suffix: str = "") -> None:
        for row in store.select(self.bots_table, suffix=suffix):
            self.bots[row["bot_id"]] = row
            self.restore_pending(row)
        for row in store.select(self.deals_table, OPEN_DEALS, suffix=suffix):
            self.deals[row["deal_id"]] = row
            self._index_open(row)
        self.marks = {r["pair"]: r for r in store.select(self.marks_table, suffix=suffix)}
        self.orders = {r["order_id"]: r for r in store.select(self.orders_table, suffix=suffix)}

    # Kinds whose facts a follower must see before the leader applies them (``before``).
    before_kinds: ClassVar[frozenset[str]] = frozenset()

    def route(self, kind: str) -> Callable[[Fact, Changes], None] | None:
        if self.leader is not None:
            return self.follow(kind)
        handler = self.handlers.get(kind)
        if handler is None:
            return None
        if kind not in Ledger.handlers:  # a subclass's own kind (an opt-in): no step ends
            return handler.__get__(self)  # at it, so every ledger's steps are the same
        befores = [f.before_for(kind) for f in self.followers if kind in f.before_kinds]
        if len(befores) == 1:  # a move with equity following: one call less per fact
            return self.stepping(kind, handler.__get__(self), befores[0])
        apply = self.stepping(kind, handler.__get__(self))
        if not befores:
            return apply

        def them_first(fact: Fact, out: Changes) -> None:
            for before in befores:
                before(fact)
            apply(fact, out)

        return them_first

    def stepping(self, kind: str, handler: Callable[[Fact, Changes], None],
                 before: Callable[[Fact], None] | None = None
                 ) -> Callable[[Fact, Changes], None]:
        """``apply`` with the handler of one kind bound (no look-up per fact), after a
        follower's ``before`` when given. A subclass adds its own work per kind here
        (equity's points)."""
        if before is None:
            def apply(fact: Fact, out: Changes) -> None:
                step = fact.state.get("correlation_id")
                if step != self.step:
                    self.end_step(out)
                    self.step = step
                handler(fact, out)
        else:
            def apply(fact: Fact, out: Changes) -> None:
                before(fact)
                step = fact.state.get("correlation_id")
                if step != self.step:
                    self.end_step(out)
                    self.step = step
                handler(fact, out)

        return apply

    def follow(self, kind: str) -> Callable[[Fact, Changes], None] | None:
        """A follower's handler of ``kind``: only its own kinds (the leader applies the
        books' ones to the books both read)."""
        handler = self.handlers.get(kind)
        if handler is None or kind in Ledger.handlers:
            return None
        return handler.__get__(self)

    def before(self, fact: Fact) -> None:
        """A follower's look at the books just before the leader applies ``fact``."""

    def before_for(self, kind: str) -> Callable[[Fact], None]:
        """``before`` for facts of ``kind`` (a subclass may bind one per kind)."""
        return self.before

    def apply(self, fact: Fact, out: Changes) -> None:
        step = fact.state.get("correlation_id")
        if step != self.step:
            self.end_step(out)
            self.step = step
        self.handlers[fact.kind](self, fact, out)

    def restore_pending(self, tally: Row) -> None:
        """A tally loaded with a step still open (the batch ended inside a step)."""
        if tally["step_pending"] is not None:
            self.pending[id(tally)] = tally
            self.step = tally["step_pending"]

    def end_step(self, out: Changes) -> None:
        pending, dirty = self.pending, self.dirty
        for key, tally in pending.items():
            tally["capital_max"] = max(tally["capital_max"], tally["committed"])
            tally["step_pending"] = None
            dirty[key] = tally  # ``touch``: the key is its id() too
        pending.clear()

    def touch(self, tally: Row) -> None:
        self.dirty[id(tally)] = tally

    def tallies(self, bot: Row) -> tuple[Row, ...]:
        """Every tally a bot's results count in (a subclass adds its owner's)."""
        return (bot,)

    def commit(self, bot: Row, amount: Decimal, fact: Fact) -> None:
        """``amount`` more (or less) quote committed by ``bot`` in this step (``apply``
        made ``self.step`` the fact's)."""
        step, pending = self.step, self.pending
        for tally in self.tallies(bot):
            tally["committed"] += amount
            tally["step_pending"] = step
            pending[id(tally)] = tally  # written at the end of the step or batch

    def bot(self, bot_id: str, owner_id: str | None = None) -> Row:
        row = self.bots.get(bot_id)
        if row is None:
            row = self.bots[bot_id] = {"bot_id": bot_id, "owner_id": owner_id, "name": None,
                                       "pair": None, "last_closed_at": None, **new_tally()}
            self.touch(row)
        return row

    # --- bots -----------------------------------------------------------------------------

    @on("Bot.Created")
    def _bot_created(self, fact: Fact, out: Changes) -> None:
        bot = self.bot(fact.oid, fact.text("owner_id"))
        bot["owner_id"], bot["name"] = fact.text("owner_id"), fact.text("name")
        bot["pair"] = fact.state["config"]["_data_"]["pair"]

    @on("Bot.ConfigEdited")
    def _bot_edited(self, fact: Fact, out: Changes) -> None:
        bot = self.bot(fact.oid)
        bot["pair"] = fact.state["config"]["_data_"]["pair"]
        self.touch(bot)

    @on("Bot.Renamed")
    def _bot_renamed(self, fact: Fact, out: Changes) -> None:
        bot = self.bot(fact.oid)
        bot["name"] = fact.text("name")
        self.touch(bot)

    # --- deals ----------------------------------------------------------------------------

    @on("Deal.Opened")
    def _deal_opened(self, fact: Fact, out: Changes) -> None:
        deal = dict.fromkeys(DEAL_COLUMNS, ZERO)
        deal.update(deal_id=fact.oid, bot_id=_id_text(fact, "bot_id"),
                    owner_id=fact.text("owner_id"), pair=fact.text("pair"), status="open",
                    close_reason=None, opened_at=fact.iso_time, closed_at=None,
                    duration_seconds=None, average_entry=None, realized_pnl=None,
                    mark_price=None, safety_orders_used=0)
        self.deals[deal["deal_id"]] = deal
        self._index_open(deal)
        self.new_deals.add(deal["deal_id"])
        self.dirty_deals.add(deal["deal_id"])
        for tally in self.tallies(self.bot(deal["bot_id"], deal["owner_id"])):
            tally["deals_open"] += 1
            self.touch(tally)

    @on("Deal.BuyFilled")
    def _deal_bought(self, fact: Fact, out: Changes) -> None:
        deal = self.deals[fact.oid]
        price, amount, fee = fact.dec("price"), fact.dec("amount"), fact.dec("fee")
        spent = price * amount
        deal["units"] += amount
        deal["units_bought"] += amount
        deal["cost"] += spent
        deal["buy_fees"] += fee
        # ``fees`` and ``average_entry`` are made once per batch (``_derive_deal``).
        deal["safety_orders_used"] = max(deal["safety_orders_used"], fact.state["safety_order"])
        pair = deal["pair"]
        known = self.marks.get(pair)  # ``mark``, written out: every fill
        if known is None:
            self.mark(pair, price, fact)
        else:
            known["price"], known["marked_at"] = price, fact.iso_time
            self.dirty_pairs.add(pair)
        self.dirty_deals.add(fact.oid)
        bot = self.bots[deal["bot_id"]]
        spent += fee
        step, pending = self.step, self.pending
        for tally in self.tallies(bot):  # ``commit`` and ``_pay`` in one pass
            tally["committed"] += spent
            tally["step_pending"] = step
            pending[id(tally)] = tally
            tally["fees"] += fee
        self.fee_paid(bot, fee, fact, out)

    @on("Deal.Closed")
    def _deal_closed(self, fact: Fact, out: Changes) -> None:
        deal = self.deals[fact.oid]
        price, amount, fee = fact.dec("price"), fact.dec("amount"), fact.dec("fee")
        pnl = fact.dec("realized_pnl")
        self._unindex_open(deal)
        deal.update(status="closed", close_reason=fact.value("reason"),
                    closed_at=fact.iso_time, realized_pnl=pnl, mark_price=price)
        deal["sell_fees"] += fee
        deal["proceeds"] += price * amount
        deal["units"] -= amount
        deal["duration_seconds"] = _seconds(deal["opened_at"], deal["closed_at"])
        self.mark(deal["pair"], price, fact)
        self.dirty_deals.add(deal["deal_id"])
        bot = self.bots[deal["bot_id"]]
        self.commit(bot, -(deal["cost"] + deal["buy_fees"]), fact)
        for tally in self.tallies(bot):
            close_into(tally, pnl)
        bot["last_closed_at"] = fact.iso_time
        self._pay(bot, fee, fact, out)
        self.deal_closed(bot, deal, fact, out)

    @on("Deal.StepSold")
    def _deal_step_sold(self, fact: Fact, out: Changes) -> None:
        """A take profit step sold part of an open deal: its proceeds and fee count, the
        P/L is realized when the deal closes (its ``Closed`` carries the whole)."""
        deal = self.deals[fact.oid]
        price, amount, fee = fact.dec("price"), fact.dec("amount"), fact.dec("fee")
        deal["sell_fees"] += fee
        deal["proceeds"] += price * amount
        deal["units"] -= amount
        self.mark(deal["pair"], price, fact)
        self.dirty_deals.add(deal["deal_id"])
        self._pay(self.bots[deal["bot_id"]], fee, fact, out)

    @on("Deal.Cancelled")
    def _deal_cancelled(self, fact: Fact, out: Changes) -> None:
        deal = self.deals[fact.oid]
        self._unindex_open(deal)
        deal.update(status="cancelled", closed_at=fact.iso_time, mark_price=None,
                    duration_seconds=_seconds(deal["opened_at"], fact.iso_time))
        self.dirty_deals.add(deal["deal_id"])
        bot = self.bots[deal["bot_id"]]
        for tally in self.tallies(bot):
            tally["deals_open"] -= 1
        self.commit(bot, -(deal["cost"] + deal["buy_fees"]), fact)

    @on("Deal.FeesCorrected")
    def _deal_fees_corrected(self, fact: Fact, out: Changes) -> None:
        """A correction: fees (and a closed deal's P/L) change from here on; the rows
        written before it stay what they were until this batch commits."""
        buy_change, sell_change = fact.dec("buy_fee_change"), fact.dec("sell_fee_change")
        buy_fees, sell_fees, pnl = fact.dec("buy_fees"), fact.dec("sell_fees"), fact.dec(
            "realized_pnl")
        values = {"buy_fees": buy_fees, "sell_fees": sell_fees, "fees": buy_fees + sell_fees}
        if pnl is not None:
            values["realized_pnl"] = pnl
        bot = self.bot(fact.id_text("bot_id"), fact.text("owner_id"))
        deal = self.deals.get(fact.oid)
        if deal is not None:  # open, or closed in this batch
            deal.update(values)
            self.dirty_deals.add(deal["deal_id"])
            if deal["status"] == "open":
                self.commit(bot, buy_change, fact)
        elif self.keep_closed_deals:
            out.patch(self.deals_table, (fact.oid,), **values)
        self._pay(bot, buy_change + sell_change, fact, out)
        if pnl is not None:
            before = pnl + buy_change + sell_change
            for tally in self.tallies(bot):
                recount(tally, before, pnl)
            self.deal_corrected(bot, pnl - before, fact, out)

    # --- orders: marks and the quote resting buy orders lock ------------------------------

    @on("Order.Submitted")
    def _order_submitted(self, fact: Fact, out: Changes) -> None:
        state = fact.state
        bot_id = state["bot_id"]  # ``_id_text``'s known case, written out: every order
        if bot_id is not None:
            bot_id = _IDS.get(bot_id["_data_"]) or _id_text(fact, "bot_id")
        price, amount = fact.dec("price"), fact.dec("amount")
        side, kind = state["side"], state["type"]  # ``fact.value``, written out
        if side.__class__ is dict and "_type_" in side:
            side = side["_data_"]
        if kind.__class__ is dict and "_type_" in kind:
            kind = kind["_data_"]
        order_id = fact.oid
        order = self.orders[order_id] = {
            "order_id": order_id, "bot_id": bot_id, "pair": state["pair"], "side": side,
            "type": kind, "price": price, "amount": amount, "filled": ZERO, "locked": ZERO}
        if bot_id and side == "buy" and kind != "market" and price:
            order["locked"] = locked = price * amount
            self.commit(self.bot(bot_id), locked, fact)
        self.pending_orders.new.add(order_id)

    @on("Order.Filled", "Order.TradeObserved")
    def _order_filled(self, fact: Fact, out: Changes) -> None:
        order = self.orders[fact.oid]
        amount = fact.dec("amount")
        pair = order["pair"]
        known = self.marks.get(pair)  # ``mark``, written out: every fill
        if known is None:
            self.mark(pair, fact.dec("price"), fact)
        else:
            known["price"], known["marked_at"] = fact.dec("price"), fact.iso_time
            self.dirty_pairs.add(pair)
        order["filled"] = filled = order["filled"] + amount
        done = filled == order["amount"]
        locked = order["locked"]
        if locked:
            release = locked if done else min(order["price"] * amount, locked)
            order["locked"] = locked - release
            self.commit(self.bots[order["bot_id"]], -release, fact)
        if done:  # ``_settle`` and ``PendingRows.ended``, inline: every fill
            order_id = order["order_id"]
            del self.orders[order_id]
            pending = self.pending_orders
            if order_id in pending.new:  # never written: nothing to delete
                pending.new.discard(order_id)
                pending.changed.discard(order_id)
            else:
                pending.changed.add(order_id)
        else:
            self.pending_orders.touched(order["order_id"])

    @on("Order.Cancelled", "Order.Rejected", "Order.Expired", "Order.Lost")
    def _order_ended(self, fact: Fact, out: Changes) -> None:
        order = self.orders[fact.oid]
        if order["locked"]:
            self.commit(self.bots[order["bot_id"]], -order["locked"], fact)
            order["locked"] = ZERO
        self._settle(order, True, out)

    def _settle(self, order: Row, final: bool, out: Changes) -> None:
        if final:
            del self.orders[order["order_id"]]
            self.pending_orders.ended(order["order_id"])
        else:
            self.pending_orders.touched(order["order_id"])

    def _pay(self, bot: Row, fee: Decimal, fact: Fact, out: Changes) -> None:
        dirty = self.dirty
        for tally in self.tallies(bot):
            tally["fees"] += fee
            dirty[id(tally)] = tally  # ``touch``
        self.fee_paid(bot, fee, fact, out)

    def mark(self, pair: str, price: Decimal, fact: Fact) -> None:
        known = self.marks.get(pair)
        if known is None:
            self.marks[pair] = {"pair": pair, "price": price, "marked_at": fact.iso_time}
        else:  # written at the end of the batch: changed in place
            known["price"], known["marked_at"] = price, fact.iso_time
        self.dirty_pairs.add(pair)

    # --- hooks and the end of a batch -----------------------------------------------------

    def fee_paid(self, bot: Row, fee: Decimal, fact: Fact, out: Changes) -> None:
        """A subclass's hook: ``bot`` paid ``fee``."""

    def deal_closed(self, bot: Row, deal: Row, fact: Fact, out: Changes) -> None:
        """A subclass's hook: ``deal`` of ``bot`` closed."""

    def deal_corrected(self, bot: Row, pnl_change: Decimal, fact: Fact, out: Changes) -> None:
        """A subclass's hook: a closed deal of ``bot`` made ``pnl_change`` more (a fee
        correction)."""

    def end_batch(self, out: Changes) -> None:
        if self.leader is not None:  # the leader settled the books both read
            settled, self.settled = self.settled, None
            for tally in settled.tallies:
                self.touch(tally)
            for tally in self.dirty.values():
                derive(tally)  # its own (a leaderboard's opt-in), idempotent on the others
            self._write_settled(settled, out)
            return
        # Only the deals this batch's events changed: a new mark moves no row but its own
        # (unrealized P/L is worked out when read, ``unrealized``).
        deals = []
        for deal_id in self.dirty_deals:
            deal = self.deals[deal_id]
            _derive_deal(deal)
            if deal["status"] != "open":
                del self.deals[deal_id]
            deals.append(deal)
        self.dirty.update(self.pending)
        for tally in self.dirty.values():
            derive(tally)
        # Each row as database values once, for every ledger's table of it (the same
        # columns): the books are the same whoever writes them.
        closed_too = self.keep_closed_deals or any(f.keep_closed_deals for f in self.followers)
        to_db = self.deals_table.to_db
        settled = Settled(deals, set(self.new_deals),
                          [t for t in self.dirty.values() if "bot_id" in t],
                          list(self.dirty_pairs),
                          [to_db(d) if closed_too or d["status"] == "open" else None
                           for d in deals],
                          self._frozen_orders())
        for follower in self.followers:
            follower.settled = settled
        self._write_settled(settled, out)
        self.dirty_deals.clear()
        self.new_deals.clear()
        self.dirty_pairs.clear()

    def _write_settled(self, settled: Settled, out: Changes) -> None:
        """This projection's rows of what a batch settled, into its own tables."""
        self._write_deals(settled, out)
        if self.bots_table.columns == BOTS_SHAPE:  # bots' rows frozen once for all such
            memo, to_db, bots = settled.bot_values, self.bots_table.to_db, []
            for tally in self.dirty.values():
                if "bot_id" not in tally:  # an owner's (``pnl``)
                    self.write_tally(tally, out)
                    continue
                values = memo.get(id(tally))
                if values is None:
                    values = memo[id(tally)] = to_db(tally)
                bots.append(values)
            out.upsert_values(self.bots_table, bots)
        else:
            for tally in self.dirty.values():
                self.write_tally(tally, out)
        for pair in settled.pairs:
            out.upsert(self.marks_table, self.marks[pair])
        orders = settled.orders
        out.insert_values(self.orders_table, orders.inserts)
        out.upsert_values(self.orders_table, orders.upserts)
        for order_id in orders.gone:
            out.delete(self.orders_table, (order_id,))
        self.after_batch(out)
        self.dirty.clear()

    def _frozen_orders(self) -> FrozenRows:
        """The orders this batch made, changed or ended, as database values (taken at the
        end of the batch: the next one changes the live rows while this one is committed);
        an order made and ended within the batch never reaches the table."""
        pending, live, to_db = self.pending_orders, self.orders, self.orders_table.to_db
        new = pending.new
        inserts = [to_db(live[key]) for key in new]
        upserts, gone = [], []
        for key in pending.changed - new:
            row = live.get(key)
            if row is None:
                gone.append(key)
            else:
                upserts.append(to_db(row))
        new.clear()
        pending.changed.clear()
        return FrozenRows(inserts, upserts, gone)

    def _index_open(self, deal: Row) -> None:
        deal_id = deal["deal_id"]
        self.open_epoch += 1
        self.open_by_bot.setdefault(deal["bot_id"], {})[deal_id] = deal
        self.open_by_pair.setdefault(deal["pair"], {})[deal_id] = deal

    def _unindex_open(self, deal: Row) -> None:
        """``deal`` is open no more (called before its status changes)."""
        if deal["status"] != "open":
            return
        deal_id = deal["deal_id"]
        self.open_epoch += 1
        for index, key in ((self.open_by_bot, deal["bot_id"]), (self.open_by_pair, deal["pair"])):
            found = index.get(key)
            if found is not None:
                found.pop(deal_id, None)
                if not found:
                    del index[key]

    def _write_deals(self, settled: Settled, out: Changes) -> None:
        inserts, upserts, table = [], [], self.deals_table
        for deal, values in zip(settled.deals, settled.deal_values, strict=True):
            new = deal["deal_id"] in settled.new_deals
            if deal["status"] != "open" and not self.keep_closed_deals:
                if not new:
                    out.delete(table, (deal["deal_id"],))
                continue
            (inserts if new else upserts).append(values)
        out.insert_values(table, inserts)
        out.upsert_values(table, upserts)

    def write_tally(self, tally: Row, out: Changes) -> None:
        out.upsert(self.bots_table, tally)

    def after_batch(self, out: Changes) -> None:
        """A subclass's hook, after the tallies of this batch are written."""


@dataclass(frozen=True)
class Settled:
    """What a batch changed in the books, for each ledger reading them to write into its
    own tables: deals (closed ones too), whether new to the tables, bot tallies, marks."""

    deals: list[Row]
    new_deals: set[str]
    tallies: list[Row]
    pairs: list[str]
    deal_values: list[tuple[Any, ...] | None]  # each deal's database values (None: unused)
    orders: FrozenRows
    # bots' rows as database values in tables of ``BOT_COLUMNS`` alone, by id() of the row
    bot_values: dict[int, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class FrozenRows:
    """Rows of one batch as database values, for each ledger's table of them: rows new to
    it, rows replaced, keys of rows gone."""

    inserts: list[tuple[Any, ...]]
    upserts: list[tuple[Any, ...]]
    gone: list[str]


_IDS: dict[str, str] = {}  # canonical id text by stored form (bots: a few, asked per order)


def _id_text(fact: Fact, name: str) -> str | None:
    """``fact.id_text(name)``, each stored form converted once (a ``uuid_text`` per order
    was a tenth of an order's handling)."""
    value = fact.state[name]
    if value is None:
        return None
    stored = value["_data_"]
    text = _IDS.get(stored)
    if text is None:
        if len(_IDS) >= 100_000:  # bounded: ids of bots, which a log holds few of
            _IDS.clear()
        text = _IDS[stored] = uuid_text(stored)
    return text


def unrealized(deal: Row, price: Decimal | None) -> Decimal:
    """An open deal (a deals row) marked at ``price``: ``units × price − cost − buy fees``,
    plus what its take profit steps sold net of their fees; zero without a price."""
    if price is None:
        return ZERO
    value = deal["units"] * price - deal["cost"] - deal["buy_fees"]
    if deal["proceeds"]:
        value += deal["proceeds"] - deal["sell_fees"]
    return value


def _derive_deal(deal: Row) -> None:
    """A deal's columns made from others, once per batch rather than at every fill (the
    same Decimal operations on the same operands: the values the fills would have left)."""
    deal["fees"] = deal["buy_fees"] + deal["sell_fees"]
    bought = deal["units_bought"]
    if bought:
        deal["average_entry"] = deal["cost"] / bought


def _seconds(start: str, end: str) -> int:
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return int(delta.total_seconds())
