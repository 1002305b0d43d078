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
from projections.tables import Changes, Row, table, unstored

EQ_BOTS = table("equity_bots", key=("bot_id",), **BOT_COLUMNS)
EQ_DEALS = table("equity_open_deals", key=("deal_id",), **DEAL_COLUMNS)
EQ_MARKS = table("equity_marks", key=("pair",), **MARK_COLUMNS)
EQ_ORDERS = table("equity_open_orders", key=("order_id",), **ORDER_COLUMNS)
# scope: "bot" or "owner"; minute: ISO text of the minute's start (UTC).
EQ_POINTS = table("equity_points", key=("scope", "scope_id", "minute"),
                  scope="text", scope_id="text", minute="text", owner_id="text",
                  realized_pnl="money", unrealized_pnl="money", equity="money")
# (a take profit step's sale marks its pair and moves its deal, as a fill does)
FILLS = frozenset({"Deal.BuyFilled", "Deal.StepSold", "Deal.Closed", "Order.Filled",
                   "Order.TradeObserved"})
MOVES = FILLS | {"Deal.Cancelled", "Deal.FeesCorrected"}


class Equity(Ledger):
    name = "equity"
    description = "realized + unrealized P/L of each bot and owner, per minute"
    tables = (EQ_BOTS, EQ_DEALS, EQ_MARKS, EQ_ORDERS, EQ_POINTS)
    revision = 1  # the steps' proceeds counted (session 14): stored points are rebuilt
    bots_table, deals_table, orders_table, marks_table = EQ_BOTS, EQ_DEALS, EQ_ORDERS, EQ_MARKS
    keep_closed_deals = False

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
        self._latest: dict[tuple[str, str], str] = {}
        # The point each (scope, scope id) last wrote to this batch's changes: a later fact
        # of its minute changes that row in place (a new row and an upsert per fact cost
        # more than the figures themselves).
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}

    def load(self, store: ViewStore, suffix: str = "") -> None:
        super().load(store, suffix)
        points = store.q(EQ_POINTS.name + suffix)
        for scope, scope_id, minute in store.query(
                f"SELECT scope, scope_id, MAX(minute) FROM {points} GROUP BY scope, scope_id"):
            self._latest[(scope, unstored(scope_id))] = minute

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
            mine, after = self.before, self.after

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
            return self.after
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
        rebuild does. (One method, no calls: it runs before every move.)"""
        self._remark = None
        if fact.kind in FILLS:
            found = self.deals.get(fact.oid) or self.orders.get(fact.oid)
            if found:
                pair = found["pair"]
                last = self.marks.get(pair)
                if last is None or last["marked_at"][:16] != fact.iso_time[:16]:
                    self._remark = pair

    def after(self, fact: Fact, out: Changes) -> None:
        pair, self._remark = self._remark, None
        deal = self.deals.get(fact.oid)
        if pair is None:  # no pair to mark again: at most the fact's own bot moved
            if deal is not None:
                self._point(deal["bot_id"], fact.iso_time[:16] + ":00+00:00", out)
            elif fact.kind == "Deal.FeesCorrected":
                self._point(fact.id_text("bot_id"), fact.iso_time[:16] + ":00+00:00", out)
            return  # an order's fill later in a minute: no point moves
        bots = {d["bot_id"] for d in self.open_by_pair.get(pair, {}).values()}
        if deal is not None:
            bots.add(deal["bot_id"])
        elif fact.kind == "Deal.FeesCorrected":
            bots.add(fact.id_text("bot_id"))
        self._points(sorted(bots), fact, out)

    def _points(self, bot_ids: Sequence[str], fact: Fact, out: Changes) -> None:
        minute = fact.iso_time[:16] + ":00+00:00"
        if len(bot_ids) == 1:  # the fact's own bot, or the pair's only holder
            self._point(bot_ids[0], minute, out)
            return
        owners: set[str] = set()
        unrealized: dict[str, Decimal] = {}
        bots = self.bots
        for bot_id in bot_ids:
            bot = bots.get(bot_id)
            if bot is None or bot["owner_id"] is None:
                continue
            unrealized[bot_id] = mine = self._bot_unrealized(bot_id)
            self._write(out, "bot", bot_id, bot["owner_id"], minute, bot["realized_pnl"], mine)
            owners.add(bot["owner_id"])
        for owner in sorted(owners):
            owned = self._owned(owner)
            realized = ZERO  # as ``sum(..., ZERO)`` adds them, without a generator
            for b in owned:
                realized += bots[b]["realized_pnl"]
            # An owner of one bot: the same sum over the same deals, already made.
            mine = unrealized.get(owned[0]) if len(owned) == 1 else None
            self._write(out, "owner", owner, owner, minute, realized,
                        self._owner_unrealized(owner, owned) if mine is None else mine)

    def _point(self, bot_id: str, minute: str, out: Changes) -> None:
        """``_points`` of one bot: its point and its owner's."""
        bot = self.bots.get(bot_id)
        if bot is None or bot["owner_id"] is None:
            return
        owner = bot["owner_id"]
        mine = self._bot_unrealized(bot_id)
        self._write(out, "bot", bot_id, owner, minute, bot["realized_pnl"], mine)
        owned = self._owned(owner)
        if len(owned) == 1:  # the owner's only bot: the same sum over the same deals
            realized = ZERO + bot["realized_pnl"]  # as ``sum`` makes it
        else:
            bots = self.bots
            realized = ZERO
            for b in owned:
                realized += bots[b]["realized_pnl"]
            mine = self._owner_unrealized(owner, owned)
        self._write(out, "owner", owner, owner, minute, realized, mine)

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

    def _write(self, out: Changes, scope: str, scope_id: str, owner: str, minute: str,
               realized: Decimal, unrealized: Decimal) -> None:
        key = (scope, scope_id)
        row = self._rows.get(key)
        if row is not None and row["minute"] == minute:  # a later fact of the same minute
            row["realized_pnl"], row["unrealized_pnl"] = realized, unrealized
            row["equity"] = realized + unrealized  # the row in this batch's changes
            return
        row = self._rows[key] = {
            "scope": scope, "scope_id": scope_id, "minute": minute, "owner_id": owner,
            "realized_pnl": realized, "unrealized_pnl": unrealized,
            "equity": realized + unrealized}
        latest = self._latest
        known = latest.get(key)
        if known is None or minute > known:
            latest[key] = minute
            out.insert(EQ_POINTS, row)
        else:
            out.upsert(EQ_POINTS, row)

    def after_batch(self, out: Changes) -> None:
        self._rows.clear()


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
