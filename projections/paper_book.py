"""What a paper runner restores when it starts, kept as the log grows: the bots to resume
(running, or holding an open deal), the orders of open deals and every open order, what
fills did to each paper account's assets, and each account's deposits less withdrawals.

A start reads these tables and the few events after their position (:func:`book_at_head`)
instead of scanning the whole log for order placements and fills
(``application.paper_log.PaperLog``). Sums are made in log order with the same operations
the runner uses, so the venues are rebuilt to the same digits either way (a test holds a
runner resumed from here equal to one resumed from a scan).

- ``paper_book_bots``: every bot, at the position it was created (a runner resumes them
  in that order), whether it runs and its open deal (``Bot.Started``,
  ``RiskResumed`` run it; ``Paused``, ``Stopped``, ``ErrorRaised``, ``ErrorReset``,
  ``RiskPaused``, ``Archived`` stop it; ``DealStarted``/``DealFinished`` open and close
  its deal).
- ``paper_book_orders``: an order from ``Order.Submitted`` while it is open or its deal is
  open; filled when its fills add up to its amount, final when lost, cancelled, rejected
  or expired.
- ``paper_book_fills`` (quote and base by account and pair) and ``paper_book_assets`` (by
  account and asset): ``Order.Filled`` of orders the book placed.
- ``paper_book_deposits``: ``ExchangeAccount.Deposited`` / ``Withdrawn``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import Projection, on
from projections.reader import uuid_text
from projections.store import ViewStore
from projections.tables import UPDATED_IN_PLACE, Changes, Row, Table, table

BOOK_BOTS = table("paper_book_bots", key=("bot_id",), fillfactor=UPDATED_IN_PLACE,
                  bot_id="text", position="int",
                  running="int", open_deal_id="text")
BOOK_ORDERS = table("paper_book_orders", key=("order_id",), indexes=(("deal_id",),),
                    order_id="text", position="int", deal_id="text", account_id="text",
                    pair="text", side="text", amount="money", filled="money", open="int")
BOOK_FILLS = table("paper_book_fills", key=("account_id", "pair"),
                   fillfactor=UPDATED_IN_PLACE, account_id="text",
                   pair="text", quote="money", base="money")
BOOK_ASSETS = table("paper_book_assets", key=("account_id", "asset"),
                    fillfactor=UPDATED_IN_PLACE, account_id="text",
                    asset="text", change="money")
BOOK_DEPOSITS = table("paper_book_deposits", key=("account_id", "asset"), account_id="text",
                      asset="text", amount="money")
RUNS, HALTS = ("Bot.Started", "Bot.RiskResumed"), (
    "Bot.Paused", "Bot.Stopped", "Bot.ErrorRaised", "Bot.ErrorReset", "Bot.RiskPaused",
    "Bot.Archived")
FINAL = ("Order.Lost", "Order.Cancelled", "Order.Rejected", "Order.Expired")


class PaperBook(Projection):
    name = "paper_book"
    description = "what a paper runner restores at start: bots, open orders, balances"
    tables = (BOOK_BOTS, BOOK_ORDERS, BOOK_FILLS, BOOK_ASSETS, BOOK_DEPOSITS)

    def __init__(self) -> None:
        self.bots: dict[str, Row] = {}
        self.orders: dict[str, Row] = {}
        self.by_deal: dict[str, set[str]] = {}
        self.fills: dict[tuple[str, str], Row] = {}
        self.assets: dict[tuple[str, str], Row] = {}
        self.deposits: dict[tuple[str, str], Row] = {}
        # Rows changed by the batch, by the row's identity: each written once, at its end
        # (a busy pair's fills and assets change at every fill).
        self.dirty: dict[int, tuple[Table, Row]] = {}
        self.legs: dict[tuple[str, str], tuple[Row, Row]] = {}  # pair's quote, base assets
        # Orders submitted in this batch: not in the table yet, so one dropped before the
        # batch's end (most: submitted and filled within it) needs no DELETE, and one kept
        # goes in as a new row (COPY), not an upsert.
        self.new_orders: set[str] = set()

    def end_batch(self, out: Changes) -> None:
        new = self.new_orders
        for spec, row in self.dirty.values():
            if spec is BOOK_ORDERS and row["order_id"] in new:
                out.insert(spec, row)
            else:
                out.upsert(spec, row)
        self.dirty.clear()
        new.clear()

    def load(self, store: ViewStore, suffix: str = "") -> None:
        self.bots = {r["bot_id"]: r for r in store.select(BOOK_BOTS, suffix=suffix)}
        for row in store.select(BOOK_ORDERS, suffix=suffix):
            self._keep_order(row)
        self.fills = {BOOK_FILLS.key_of(r): r for r in store.select(BOOK_FILLS, suffix=suffix)}
        self.assets = {BOOK_ASSETS.key_of(r): r
                       for r in store.select(BOOK_ASSETS, suffix=suffix)}
        self.legs = {}
        self.deposits = {BOOK_DEPOSITS.key_of(r): r
                         for r in store.select(BOOK_DEPOSITS, suffix=suffix)}

    def rows(self) -> int:
        """How many rows its tables hold (what a load of them reads)."""
        return (len(self.bots) + len(self.orders) + len(self.fills) + len(self.assets)
                + len(self.deposits))

    def copy(self) -> PaperBook:
        """Another book holding the same (the rows copied: each book changes its own)."""
        book = PaperBook()
        book.bots = {key: dict(row) for key, row in self.bots.items()}
        book.orders = {key: dict(row) for key, row in self.orders.items()}
        book.by_deal = {key: set(ids) for key, ids in self.by_deal.items()}
        book.fills = {key: dict(row) for key, row in self.fills.items()}
        book.assets = {key: dict(row) for key, row in self.assets.items()}
        book.deposits = {key: dict(row) for key, row in self.deposits.items()}
        return book

    def _keep_order(self, row: Row) -> None:
        self.orders[row["order_id"]] = row
        if row["deal_id"] is not None:
            self.by_deal.setdefault(row["deal_id"], set()).add(row["order_id"])

    # --- bots -----------------------------------------------------------------------------

    def _bot(self, fact: Fact) -> Row:
        row = self.bots.get(fact.oid)
        if row is None:
            row = self.bots[fact.oid] = {"bot_id": fact.oid, "position": fact.position,
                                         "running": 0, "open_deal_id": None}
        return row

    @on("Bot.Created")
    def _created(self, fact: Fact, out: Changes) -> None:
        row = self._bot(fact)
        self.dirty[id(row)] = (BOOK_BOTS, row)

    @on(*RUNS, *HALTS)
    def _status(self, fact: Fact, out: Changes) -> None:
        row = self._bot(fact)
        row["running"] = int(fact.kind in RUNS)
        self.dirty[id(row)] = (BOOK_BOTS, row)

    @on("Bot.DealStarted", "Bot.DealFinished")
    def _deal(self, fact: Fact, out: Changes) -> None:
        row = self._bot(fact)
        self.dirty[id(row)] = (BOOK_BOTS, row)
        if fact.kind == "Bot.DealStarted":
            row["open_deal_id"] = fact.id_text("deal_id")
            return
        deal_id = fact.id_text("deal_id")
        row["open_deal_id"] = None
        for order_id in sorted(self.by_deal.pop(deal_id, ())):
            order = self.orders[order_id]
            if order["open"]:
                order["deal_id"] = None  # kept while open, no longer listed with the deal
                self.dirty[id(order)] = (BOOK_ORDERS, order)
            else:
                self._drop(order, out, listed=False)  # (the deal's list is gone already)

    # --- orders ---------------------------------------------------------------------------

    @on("Order.Submitted")
    def _submitted(self, fact: Fact, out: Changes) -> None:
        # Every order of the log comes here: its plain fields read from the state at once.
        state = fact.state
        deal, side = state["deal_id"], state["side"]
        row = {"order_id": fact.oid, "position": fact.position,
               "deal_id": None if deal is None else uuid_text(deal["_data_"]),
               "account_id": state["exchange_account_id"], "pair": state["pair"],
               "side": side["_data_"] if side.__class__ is dict else side,
               "amount": fact.dec("amount"), "filled": ZERO, "open": 1}
        self._keep_order(row)
        self.dirty[id(row)] = (BOOK_ORDERS, row)
        self.new_orders.add(row["order_id"])

    @on("Order.Filled", "Order.TradeObserved")
    def _filled(self, fact: Fact, out: Changes) -> None:
        order = self.orders.get(fact.oid)
        if order is None:
            return  # placed before this book began: nothing it restores
        amount = fact.dec("amount")
        order["filled"] += amount
        if fact.kind == "Order.Filled":
            self._book_fill(order, fact.dec("price"), amount, fact.dec("fee"))
        if order["filled"] == order["amount"]:
            self._close(order, out)
        else:
            self.dirty[id(order)] = (BOOK_ORDERS, order)

    @on(*FINAL)
    def _final(self, fact: Fact, out: Changes) -> None:
        order = self.orders.get(fact.oid)
        if order is not None:
            self._close(order, out)

    def _close(self, order: Row, out: Changes) -> None:
        order["open"] = 0
        if order["deal_id"] is None:
            self._drop(order, out)
        else:
            self.dirty[id(order)] = (BOOK_ORDERS, order)

    def _drop(self, order: Row, out: Changes, listed: bool = True) -> None:
        order_id = order["order_id"]
        del self.orders[order_id]
        self.dirty.pop(id(order), None)
        if listed and order["deal_id"] is not None:
            self.by_deal.get(order["deal_id"], set()).discard(order_id)
        if order_id in self.new_orders:
            self.new_orders.discard(order_id)  # never written: nothing to delete
        else:
            out.delete(BOOK_ORDERS, (order_id,))

    def _book_fill(self, order: Row, price: Decimal, amount: Decimal, fee: Decimal) -> None:
        """The same sums as ``application.paper_log.PaperLog._filled``, in the same order."""
        key = (order["account_id"], order["pair"])
        fills = self.fills.get(key)
        if fills is None:
            fills = self.fills[key] = {"account_id": key[0], "pair": key[1],
                                       "quote": ZERO, "base": ZERO}
        legs = self.legs.get(key)
        if legs is None:
            base_asset, _, quote_asset = key[1].partition("/")
            legs = self.legs[key] = (self._asset(key[0], quote_asset),
                                     self._asset(key[0], base_asset))
        quote, base = legs
        notional = price * amount
        if order["side"] == "buy":
            fills["quote"], fills["base"] = fills["quote"] - notional - fee, fills["base"] + amount
            sign = 1
        else:
            fills["quote"], fills["base"] = fills["quote"] + notional - fee, fills["base"] - amount
            sign = -1
        quote["change"] = quote["change"] - sign * notional - fee
        base["change"] = base["change"] + sign * amount
        dirty = self.dirty
        dirty[id(fills)] = (BOOK_FILLS, fills)
        dirty[id(quote)] = (BOOK_ASSETS, quote)
        dirty[id(base)] = (BOOK_ASSETS, base)

    def _asset(self, account: str, asset: str) -> Row:
        row = self.assets.get((account, asset))
        if row is None:
            row = self.assets[(account, asset)] = {"account_id": account, "asset": asset,
                                                   "change": ZERO}
        return row

    # --- deposits -------------------------------------------------------------------------

    @on("ExchangeAccount.Deposited", "ExchangeAccount.Withdrawn")
    def _transfer(self, fact: Fact, out: Changes) -> None:
        """As ``application.paper_venues._deposits`` sums them."""
        key = (fact.oid, fact.text("asset"))
        row = self.deposits.get(key) or {"account_id": key[0], "asset": key[1],
                                         "amount": ZERO}
        sign = -1 if fact.kind.endswith("Withdrawn") else 1
        row["amount"] = row["amount"] + sign * fact.dec("amount")
        self.deposits[key] = row
        self.dirty[id(row)] = (BOOK_DEPOSITS, row)

    # --- what a runner restores -----------------------------------------------------------

    def restart_book(self, position: int = 0) -> Any:
        """What a runner restores, as of ``position`` (the last event applied)."""
        from application.paper_log import RestartBook

        uuid = _uuid_reader()
        orders = sorted(self.orders.values(), key=lambda r: r["position"])
        assets: dict[str, dict[str, Decimal]] = {}
        for (account, asset), row in self.assets.items():
            assets.setdefault(account, {})[asset] = row["change"]
        deposits: dict[str, dict[str, Decimal]] = {}
        for (account, asset), row in self.deposits.items():
            deposits.setdefault(account, {})[asset] = row["amount"]
        return RestartBook(
            bots=[uuid(r["bot_id"]) for r in sorted(self.bots.values(),
                                                    key=lambda r: r["position"])
                  if r["running"] or r["open_deal_id"] is not None],
            orders=[(uuid(r["order_id"]), None if r["deal_id"] is None else uuid(r["deal_id"]),
                     r["account_id"], r["pair"], r["side"], bool(r["open"])) for r in orders],
            fills={key: (row["quote"], row["base"]) for key, row in self.fills.items()},
            assets=assets, deposits=deposits, position=position)


# The book a live projector loaded (a copy) and its position, by the store it read: a
# ``BookAtHead`` of the same store (the server's in-process read models) starts from it
# instead of reading the tables again. WHY: a start read the book's ~65,000 rows twice at
# 10,000 bots. The projector reads its tables in one consistent snapshot, as ``BookAtHead``
# does, and offers the copy before it applies any event; it withdraws it once it moved on
# by more than ``BookAtHead.RELOAD_AFTER`` events (too old to be taken: not kept).
_LOADED: weakref.WeakKeyDictionary[Any, tuple[PaperBook, int]] = weakref.WeakKeyDictionary()
_LOADED_LOCK = threading.Lock()


def offer_loaded(store: ViewStore, book: PaperBook, position: int) -> None:
    copied = book.copy()
    with _LOADED_LOCK:
        _LOADED[store] = (copied, position)


def withdraw_loaded(store: ViewStore) -> None:
    with _LOADED_LOCK:
        _LOADED.pop(store, None)


def take_loaded(store: ViewStore) -> tuple[PaperBook, int] | None:
    """The book offered for ``store`` and its position, once (None: none offered)."""
    with _LOADED_LOCK:
        return _LOADED.pop(store, None)


def _uuid_reader() -> Callable[[str], UUID]:
    """``UUID(text)`` for the book's ids, each text read once (a deal's orders name it
    alike) and without ``UUID.__init__``'s parsing. WHY: a start reads ~110,000 ids of
    the book at 10,000 bots; ``UUID(text)`` was a fifth of making the book."""
    from application.snapshots import uuid_of_hex

    seen: dict[str, UUID] = {}

    def uuid(text: str) -> UUID:
        found = seen.get(text)
        if found is None:
            found = seen[text] = uuid_of_hex(text.replace("-", ""))
        return found

    return uuid


def book_at_head(app: Any, store: ViewStore) -> Any:
    """The book as of the log's head: its tables (where a run of this projection left
    them), then the events after their position read in memory, nothing written."""
    at_head = BookAtHead(app, store)
    try:
        return at_head()
    finally:
        at_head.close()


class BookAtHead:
    """``book_at_head``, kept in memory between calls: a later call reads only the events
    since the last one (a start asks twice, for the bots that run and then for their
    orders and balances), unless the log moved on by more than ``RELOAD_AFTER`` events
    (then the tables again: fewer rows than that many events)."""

    RELOAD_AFTER = 50_000

    def __init__(self, app: Any, store: ViewStore):
        from projections.facts import FactDecoder

        self.app, self.views, self.store = app, store, store
        self.decode = FactDecoder(app.mapper)
        self.book: PaperBook | None = None
        self.position = 0
        self._made: Any = None  # the last RestartBook made, while the log has not moved
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        # On PostgreSQL a connection of its own, for this call only: it may be asked on
        # another thread than the one the projections write on (SQLite's store is this
        # process's alone), and a start asks once or twice, so none is kept open.
        with self._lock:
            owned = self.views.clone() if self.views.kind == "postgres" else None
            self.store = owned or self.views
            try:
                head = self.app.recorder.max_notification_id() or 0
                if self.book is None or head - self.position > self.RELOAD_AFTER:
                    self._load(head)
                    self._made = None
                self._read_after()
            finally:
                if owned is not None:
                    owned.close()
            assert self.book is not None
            if self._made is None or self._made.position != self.position:
                # (its consumers copy what they change: the same one serves again)
                self._made = self.book.restart_book(self.position)
            return self._made

    def close(self) -> None:
        """Nothing held open between calls (kept for the callers that close it)."""

    def _load(self, head: int) -> None:
        """The tables and their position, read in one consistent snapshot: a projections
        process writing meanwhile cannot make the events after it count twice. Or the
        book this process's projector loaded so (``offer_loaded``), unless too far back."""
        offered = take_loaded(self.views)
        if offered is not None and head - offered[1] <= self.RELOAD_AFTER:
            book, position = offered
            # The projector may have applied events since it offered its copy: then the
            # tables are ahead of it, and the copy is taken only while the events between
            # are fewer than the rows a read of the tables costs (else a copy offered before
            # a long catch-up would read that much of the log instead of the book).
            row = self.store.tracking().get(PaperBook.name)
            ahead = 0 if row is None else row.position - position
            if ahead <= book.rows():
                self.book, self.position = book, position
                return
        self.book, self.position = PaperBook(), 0
        with self.store.consistent_reads():
            row = self.store.tracking().get(PaperBook.name)
            if row is not None and row.schema_hash == PaperBook.schema():
                self.book.load(self.store)
                self.position = row.position

    def _read_after(self) -> None:
        from projections.reader import LogReader

        book, reader = self.book, LogReader(self.app, self.store)
        assert book is not None
        out = Changes(book.tables)
        while page := reader.page(self.position, 10_000):
            for log_row in page:
                fact = self.decode(log_row)
                handler = book.route(fact.kind)
                if handler is not None:
                    handler(fact, out)
            book.end_batch(out)  # (nothing written: only what it keeps for a batch let go)
            self.position = page[-1][0]
