"""Equity curves: realized + unrealized P/L of each bot and of each owner over time.

The books are those of ``pnl`` (``ledger.py``), kept in tables of this projection's own so it
runs and rebuilds alone. After every fact that moves a bot's realized P/L, its open deals or
the mark of a pair it holds, the bot's and its owner's figures are written to
``equity_points`` under the fact's minute (UTC, event time): a minute's row holds the figures
after the last fact of that minute. A point depends only on the log up to its fact, never on
where a batch ended, so a rebuild writes the same rows as the incremental updates did.

Unrealized P/L of an open deal is ``ledger.unrealized``, the figure ``pnl`` and the api show:
``units × mark − cost − buy fees``, plus what its take profit steps already sold net of
their fees, with the mark of ``ledger.py`` (the pair's last fill seen in the log); sums run
in id order, so they are exact and repeatable. (Before session 14 the steps' proceeds were
left out: a curve dipped by what a step sold until its deal closed; ``revision`` 1 rebuilds
the points so.) A fill moves its own bot's point; the other bots holding the pair
are marked again at the first fill of each minute only (a busy pair would otherwise
rewrite every holder's point at every fill).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.money import ZERO
from projections import ledger
from projections.facts import Fact
from projections.ledger import BOT_COLUMNS, DEAL_COLUMNS, MARK_COLUMNS, ORDER_COLUMNS, Ledger
from projections.store import ViewStore
from projections.tables import UPDATED_IN_PLACE, Changes, Row, schema_hash, storable, table

EQ_BOTS = table("equity_bots", key=("bot_id",), fillfactor=UPDATED_IN_PLACE, **BOT_COLUMNS)
EQ_DEALS = table("equity_open_deals", key=("deal_id",), **DEAL_COLUMNS)
EQ_MARKS = table("equity_marks", key=("pair",), **MARK_COLUMNS)
EQ_ORDERS = table("equity_open_orders", key=("order_id",), **ORDER_COLUMNS)
# scope: "bot" or "owner"; minute: ISO text of the minute's start (UTC).
EQ_POINTS = table("equity_points", key=("scope", "scope_id", "minute"),
                  scope="text", scope_id="text", minute="text", owner_id="text",
                  realized_pnl="money", unrealized_pnl="money", equity="money")
# Each scope's latest minute in ``equity_points``, written in the batch that wrote that
# point: a start reads these (a few rows per bot) instead of grouping every point.
EQ_LATEST = table("equity_latest", key=("scope", "scope_id"), fillfactor=UPDATED_IN_PLACE,
                  scope="text", scope_id="text", minute="text")
# (a take profit step's sale marks its pair and moves its deal, as a fill does)
FILLS = frozenset({"Deal.BuyFilled", "Deal.StepSold", "Deal.Closed", "Order.Filled",
                   "Order.TradeObserved"})
MOVES = FILLS | {"Deal.Cancelled", "Deal.FeesCorrected"}


class Equity(Ledger):
    name = "equity"
    description = "realized + unrealized P/L of each bot and owner, per minute"
    tables = (EQ_BOTS, EQ_DEALS, EQ_MARKS, EQ_ORDERS, EQ_LATEST, EQ_POINTS)
    # 1: the steps' proceeds counted (session 14): stored points are rebuilt.
    # 2: ``equity_latest`` (session 15): made in place from revision 1's points (``upgrade``).
    revision = 2
    bots_table, deals_table, orders_table, marks_table = EQ_BOTS, EQ_DEALS, EQ_ORDERS, EQ_MARKS
    keep_closed_deals = False

    @classmethod
    def upgrade(cls, store: ViewStore, stored_hash: str) -> bool:
        """Revision 1's tables lack only ``equity_latest``, which is each scope's latest
        minute in ``equity_points``: one ``GROUP BY`` makes it, where a rebuild from the log
        took about an hour on a 10-million-event log (and held the start that long)."""
        if stored_hash != schema_hash(tuple(t for t in cls.tables if t is not EQ_LATEST), 1):
            return False
        latest = store.q(EQ_LATEST.name)

        def make(cur: Any, generation: int) -> None:
            store.create_table(cur, EQ_LATEST, "", generation)
            store.execute(cur, f"INSERT INTO {latest} (scope, scope_id, minute) "
                          f"SELECT scope, scope_id, MAX(minute) FROM "
                          f"{store.q(EQ_POINTS.name)} GROUP BY scope, scope_id")

        return cls.upgrade_in_place(store, stored_hash, make)

    before_kinds = MOVES  # a fill's pair and whether it starts a minute: before it settles

    def __init__(self) -> None:
        super().__init__()
        self._by_owner: dict[str, list[str]] | None = None  # bot ids, rebuilt on Bot events
        self._owned_count = 0  # how many bots there were when ``_by_owner`` was made
        self._remark: str | None = None  # the pair whose holders ``after`` marks again
        # Each owner's open deals in deal id order: (``open_epoch``, its bots, the deals).
        self._owner_deals: dict[str, tuple[int, list[str], list[Row]]] = {}
        # The latest minute each (scope, scope id) has a point at, in its table or this
        # batch: a later minute is a row the table cannot hold yet, written with COPY
        # instead of an upsert (nearly every point: event time moves forward). An earlier
        # one (time going back, e.g. two engines' clocks) is upserted as before.
        # Kept apart by scope (no key tuple per point).
        self._bot_latest: dict[str, str] = {}
        self._owner_latest: dict[str, str] = {}
        # The point each (scope, scope id) last wrote to this batch's changes: a later fact
        # of its minute changes that row in place (a new row and an upsert per fact cost
        # more than the figures themselves). By scope, as ``_*_latest``.
        self._bot_rows: dict[str, dict[str, Any]] = {}
        self._owner_rows: dict[str, dict[str, Any]] = {}
        self._new_points: list[dict[str, Any]] = []  # this batch's, in the order made
        # The scope ids whose latest minute moved in this batch (``equity_latest``'s rows).
        self._bot_moved: set[str] = set()
        self._owner_moved: set[str] = set()
        self._stored: dict[str, str] = {}  # ``storable`` of bot ids and owners

    def load(self, store: ViewStore, suffix: str = "") -> None:
        super().load(store, suffix)
        for row in store.select(EQ_LATEST, suffix=suffix):
            latest = self._bot_latest if row["scope"] == "bot" else self._owner_latest
            latest[row["scope_id"]] = row["minute"]

    def apply(self, fact: Fact, out: Changes) -> None:
        kind = fact.kind
        if kind.startswith("Bot."):
            self._by_owner = None
        if kind not in MOVES:
            super().apply(fact, out)
            return
        self.before(fact)
        super().apply(fact, out)
        self.after(fact, out)

    def stepping(self, kind: str, handler: Callable[[Fact, Changes], None],
                 before: Callable[[Fact], None] | None = None
                 ) -> Callable[[Fact, Changes], None]:
        """``apply`` bound to one kind (run alone, or leading other ledgers): the books'
        handler, with the points after a move and who owns which bot after a bot's
        event."""
        stepped = super().stepping(kind, handler, before)
        if kind in MOVES:
            mine, after = self.before_for(kind), self.after_for(kind)

            def moved(fact: Fact, out: Changes) -> None:
                mine(fact)
                stepped(fact, out)
                after(fact, out)

            return moved
        if kind.startswith("Bot."):
            def bots_changed(fact: Fact, out: Changes) -> None:
                self._by_owner = None
                stepped(fact, out)

            return bots_changed
        return stepped

    def follow(self, kind: str) -> Callable[[Fact, Changes], None] | None:
        """Reading a leader's books: the points after each move, and who owns which bot."""
        if kind in MOVES:
            return self.after_for(kind)
        if kind.startswith("Bot.") and kind in self.handlers:
            return self._bots_changed
        return super().follow(kind)

    def _bots_changed(self, fact: Fact, out: Changes) -> None:
        self._by_owner = None

    def before(self, fact: Fact) -> None:
        """Whether ``fact`` is the first fill of its pair in this minute: then every bot
        holding the pair is marked again (later fills of the minute move only their own
        bot's point, so a busy pair costs its holders once a minute, not once a fill). The
        previous mark's time is in the projection's table, so a restart decides as a
        rebuild does. Routed facts go to the one of its kind (``before_for``)."""
        self.before_for(fact.kind)(fact)

    def before_for(self, kind: str) -> Callable[[Fact], None]:
        """``before`` bound to one kind: an order's fill finds its pair among the orders, a
        deal's among the deals, a move that is no fill marks nothing again."""
        if kind not in FILLS:
            return self._no_remark
        return self._first_fill(orders=kind.startswith("Order."))

    def _no_remark(self, fact: Fact) -> None:
        self._remark = None

    def _first_fill(self, orders: bool) -> Callable[[Fact], None]:
        def before(fact: Fact) -> None:  # ``before``, its books known (no calls: every move)
            self._remark = None
            found = (self.orders if orders else self.deals).get(fact.oid)
            if found:
                pair = found["pair"]
                last = self.marks.get(pair)
                if last is None or last["marked_at"][:16] != fact.iso_time[:16]:
                    self._remark = pair

        return before

    def after_for(self, kind: str) -> Callable[[Fact, Changes], None]:
        """``after`` bound to one kind: an order's fill moves no deal of its own."""
        return self._after_order_fill if kind.startswith("Order.") else self.after

    def _after_order_fill(self, fact: Fact, out: Changes) -> None:
        pair, self._remark = self._remark, None
        if pair is not None:
            self._remarked(pair, None, fact, out)

    def after(self, fact: Fact, out: Changes) -> None:
        pair, self._remark = self._remark, None
        deal = self.deals.get(fact.oid)
        if deal is not None:
            bot_id = deal["bot_id"]
        elif fact.kind == "Deal.FeesCorrected":
            bot_id = fact.id_text("bot_id")
        else:
            bot_id = None
        if pair is not None:
            self._remarked(pair, bot_id, fact, out)
        elif bot_id is not None:  # no pair to mark again: at most the fact's own bot moved
            self._point(bot_id, fact.iso_time[:16] + ":00+00:00", out)
        # (an order's fill later in a minute: no point moves)

    def _remarked(self, pair: str, bot_id: str | None, fact: Fact, out: Changes) -> None:
        """The points after the first fill of ``pair`` in a minute: every bot holding the
        pair, and ``bot_id`` (the fact's own, if any)."""
        holders = self.open_by_pair.get(pair)
        if holders and len(holders) == 1:  # one open deal on the pair: no set to make
            for deal in holders.values():
                holder = deal["bot_id"]
            if bot_id is not None and bot_id != holder:
                self._points(sorted((holder, bot_id)), fact, out)
                return
            bot_id = holder
        elif holders:
            bots = {d["bot_id"] for d in holders.values()}
            if bot_id is not None:
                bots.add(bot_id)
            if len(bots) > 1:
                self._points(sorted(bots), fact, out)
                return
            bot_id = bots.pop()
        if bot_id is not None:  # the fact's own bot, or the pair's only holder
            self._point(bot_id, fact.iso_time[:16] + ":00+00:00", out)

    def _points(self, bot_ids: Sequence[str], fact: Fact, out: Changes) -> None:
        minute = fact.iso_time[:16] + ":00+00:00"
        owners: set[str] = set()
        unrealized: dict[str, Decimal] = {}
        bots = self.bots
        for bot_id in bot_ids:
            bot = bots.get(bot_id)
            if bot is None or bot["owner_id"] is None:
                continue
            unrealized[bot_id] = mine = self._bot_unrealized(bot_id)
            self._write(self._bot_rows, self._bot_latest, self._bot_moved, out, "bot", bot_id,
                        bot["owner_id"], minute, bot["realized_pnl"], mine)
            owners.add(bot["owner_id"])
        for owner in sorted(owners):
            owned = self._owned(owner)
            realized = ZERO  # as ``sum(..., ZERO)`` adds them, without a generator
            for b in owned:
                realized += bots[b]["realized_pnl"]
            # An owner of one bot: the same sum over the same deals, already made.
            mine = unrealized.get(owned[0]) if len(owned) == 1 else None
            self._write(self._owner_rows, self._owner_latest, self._owner_moved, out, "owner",
                        owner, owner, minute, realized,
                        self._owner_unrealized(owner, owned) if mine is None else mine)

    def _point(self, bot_id: str, minute: str, out: Changes) -> None:
        """``_points`` of one bot: its point and its owner's. (The common case, written
        out: it runs at nearly every fill.)"""
        bot = self.bots.get(bot_id)
        if bot is None or bot["owner_id"] is None:
            return
        owner = bot["owner_id"]
        found = self.open_by_bot.get(bot_id)
        if not found:
            mine = ZERO
        elif len(found) == 1:  # ``_value`` of its one deal
            for deal in found.values():
                mark = self.marks.get(deal["pair"])
                mine = ZERO if mark is None else ZERO + ledger.unrealized(deal, mark["price"])
        else:
            mine = self._value([found[k] for k in sorted(found)])
        self._write(self._bot_rows, self._bot_latest, self._bot_moved, out, "bot", bot_id,
                    owner, minute, bot["realized_pnl"], mine)
        by_owner = self._by_owner  # ``_owned``'s answer while it holds
        owned = (by_owner.get(owner, []) if by_owner is not None
                 and self._owned_count == len(self.bots) else self._owned(owner))
        if len(owned) == 1:  # the owner's only bot: the same sum over the same deals
            realized = ZERO + bot["realized_pnl"]  # as ``sum`` makes it
        else:
            bots = self.bots
            realized = ZERO
            for b in owned:
                realized += bots[b]["realized_pnl"]
            mine = self._owner_unrealized(owner, owned)
        self._write(self._owner_rows, self._owner_latest, self._owner_moved, out, "owner",
                    owner, owner, minute, realized, mine)

    def _owned(self, owner: str) -> list[str]:
        if self._by_owner is None or self._owned_count != len(self.bots):  # bots only come
            self._by_owner = {}
            for bot in sorted(self.bots.values(), key=lambda b: b["bot_id"]):
                self._by_owner.setdefault(bot["owner_id"], []).append(bot["bot_id"])
            self._owned_count = len(self.bots)
        return self._by_owner.get(owner, [])

    def _bot_unrealized(self, bot_id: str) -> Decimal:
        """The bot's open deals summed in deal id order (from the index: what it holds,
        not a scan of every open deal per fill)."""
        found = self.open_by_bot.get(bot_id)
        if not found:
            return ZERO
        return self._value(found.values() if len(found) == 1
                           else [found[k] for k in sorted(found)])

    def _owner_unrealized(self, owner: str, owned: list[str]) -> Decimal:
        """The open deals of ``owned`` (the owner's bots) summed in deal id order. The
        sorted deals are kept until a deal opens or ends (``open_epoch``) or the owner's
        bots change: most fills move marks and units, not which deals are open, and the
        merge and sort of every bot's deals was a fifth of an owner's point."""
        epoch = (self.leader or self).open_epoch
        known = self._owner_deals.get(owner)
        if known is not None and known[0] == epoch and known[1] is owned:
            return self._value(known[2])
        by_bot, found = self.open_by_bot, {}
        for bot_id in owned:
            found.update(by_bot.get(bot_id, ()))
        deals = [found[k] for k in sorted(found)]
        self._owner_deals[owner] = (epoch, owned, deals)
        return self._value(deals)

    def _value(self, deals: Iterable[Row]) -> Decimal:
        marks, total = self.marks, ZERO
        for deal in deals:
            mark = marks.get(deal["pair"])
            if mark is not None:
                total += ledger.unrealized(deal, mark["price"])
        return total

    def _write(self, rows: dict[str, dict[str, Any]], latest: dict[str, str], moved: set[str],
               out: Changes, scope: str, scope_id: str, owner: str, minute: str,
               realized: Decimal, unrealized: Decimal) -> None:
        """The point of ``scope_id`` (``rows``, ``latest`` and ``moved`` are its scope's)."""
        row = rows.get(scope_id)
        if row is not None and row["minute"] == minute:  # a later fact of the same minute
            row["realized_pnl"], row["unrealized_pnl"] = realized, unrealized
            row["equity"] = realized + unrealized  # the row in this batch's changes
            return
        row = rows[scope_id] = {
            "scope": scope, "scope_id": scope_id, "minute": minute, "owner_id": owner,
            "realized_pnl": realized, "unrealized_pnl": unrealized,
            "equity": realized + unrealized}
        known = latest.get(scope_id)
        if known is None or minute > known:
            latest[scope_id] = minute
            moved.add(scope_id)
            self._new_points.append(row)  # goes in at the end of the batch (``after_batch``)
        else:
            out.upsert(EQ_POINTS, row)

    def after_batch(self, out: Changes) -> None:
        """The batch's new points go in as database values, made here from what they hold
        (a row converted by ``Table.to_db`` at freezing cost twice as much: half of a
        rebuild's points' cost was making rows and converting them). A point later
        upserted in the same batch (time going back) is written twice, the upsert last."""
        stored, ascii_texts = self._stored, True
        for row in self._new_points:
            minute, scope_id, owner = row["minute"], row["scope_id"], row["owner_id"]
            if not (minute.isascii() and "\x00" not in minute):
                out.insert(EQ_POINTS, row)  # checked and escaped as any row is
                continue
            try:  # ids and owners as stored: a few, each made storable once
                scope_id, owner = stored[scope_id], stored[owner]
            except KeyError:
                ascii_texts = False
                scope_id = stored.setdefault(scope_id, storable(scope_id))
                owner = stored.setdefault(owner, storable(owner))
            out.append_storable(EQ_POINTS, (
                row["scope"], scope_id, minute, owner, str(row["realized_pnl"]),
                str(row["unrealized_pnl"]), str(row["equity"])))
        # Each moved scope's latest minute as database values, made here as the points
        # are (a row a scope, ~11,000 a minute at 10,000 bots, made and converted by
        # ``Table.to_db`` cost about as much again).
        latest_rows = []
        for scope, latest, moved in (("bot", self._bot_latest, self._bot_moved),
                                     ("owner", self._owner_latest, self._owner_moved)):
            for key in sorted(moved):
                minute = latest[key]
                if not (minute.isascii() and "\x00" not in minute):
                    minute = storable(minute)
                try:
                    scope_id = stored[key]
                except KeyError:
                    ascii_texts = False
                    scope_id = stored.setdefault(key, storable(key))
                latest_rows.append((scope, scope_id, minute))
            moved.clear()
        out.upsert_values(EQ_LATEST, latest_rows)
        if not ascii_texts and len(stored) > 100_000:  # bounded: bots and owners
            stored.clear()
        self._new_points.clear()
        self._bot_rows.clear()
        self._owner_rows.clear()


# --- reading --------------------------------------------------------------------------------

RESOLUTIONS = {"MINUTE": 60, "FIVE_MINUTES": 300, "FIFTEEN_MINUTES": 900, "HOUR": 3600,
               "FOUR_HOURS": 14_400, "DAY": 86_400}
MAX_POINTS = 5000


class CurveError(ValueError):
    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def equity_curve(store: ViewStore, scope: str, scope_id: str, start: datetime,
                 end: datetime, seconds: int) -> list[dict[str, Any]]:
    """One point per ``seconds`` from ``start`` to ``end`` (both UTC, inclusive): the
    figures as they were at the end of each step (the last minute recorded by then; zeros
    before the first)."""
    if end < start:
        raise CurveError("INVALID_RANGE", "to is before from", "to")
    count = int((end - start).total_seconds() // seconds) + 1
    if count > MAX_POINTS:
        raise CurveError("TOO_MANY_POINTS", f"{count} points asked for, at most {MAX_POINTS}: "
                         "choose a coarser resolution or a shorter range", "resolution")
    rows = store.select(EQ_POINTS, "scope = ? AND scope_id = ? AND minute <= ?",
                        (scope, scope_id, _minute(end)), order="minute")
    points, current, i = [], None, 0
    for n in range(count):
        at = start + timedelta(seconds=seconds * n)
        limit = _minute(at)
        while i < len(rows) and rows[i]["minute"] <= limit:
            current, i = rows[i], i + 1
        realized = current["realized_pnl"] if current else ZERO
        unrealized = current["unrealized_pnl"] if current else ZERO
        points.append({"time": at, "realized_pnl": realized, "unrealized_pnl": unrealized,
                       "equity": realized + unrealized})
    return points


def _minute(moment: datetime) -> str:
    return moment.isoformat()[:16] + ":00+00:00"
