"""P/L: per deal, per bot, per owner, and a daily series per bot (see ``ledger.py`` for how
each number is made).

Tables: ``pnl_deals`` (every deal, open or finished), ``pnl_bots``, ``pnl_owners``,
``pnl_daily`` (one row per bot and UTC day with activity), ``pnl_marks`` (last fill price of
each pair) and ``pnl_open_orders`` (the projection's memory of orders not final yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import on
from projections.latest_keys import latest_walk
from projections.ledger import (
    BOT_COLUMNS,
    DEAL_COLUMNS,
    MARK_COLUMNS,
    ORDER_COLUMNS,
    Ledger,
    unrealized,
)
from projections.queries import CHUNK
from projections.store import ViewStore
from projections.tables import OPEN_DEALS, UPDATED_IN_PLACE, Changes, Row, table
from projections.tallies import TALLY_COLUMNS, derive, new_tally

PNL_DEALS = table("pnl_deals", key=("deal_id",), open_rows=OPEN_DEALS,
                  indexes=(("bot_id", "opened_at"), ("owner_id", "status")), **DEAL_COLUMNS)
PNL_BOTS = table("pnl_bots", key=("bot_id",), indexes=(("owner_id",),),
                 fillfactor=UPDATED_IN_PLACE, **BOT_COLUMNS)
PNL_OWNERS = table("pnl_owners", key=("owner_id",), fillfactor=UPDATED_IN_PLACE,
                   owner_id="text", **TALLY_COLUMNS)
PNL_DAILY = table("pnl_daily", key=("bot_id", "day"), fillfactor=UPDATED_IN_PLACE,
                  bot_id="text", day="text",
                  realized_pnl="money", fees="money", deals_closed="int",
                  cumulative_realized="money")
PNL_MARKS = table("pnl_marks", key=("pair",), **MARK_COLUMNS)
PNL_OPEN_ORDERS = table("pnl_open_orders", key=("order_id",), **ORDER_COLUMNS)


class Pnl(Ledger):
    name = "pnl"
    description = "P/L per deal, bot, owner and day"
    tables = (PNL_DEALS, PNL_BOTS, PNL_OWNERS, PNL_DAILY, PNL_MARKS, PNL_OPEN_ORDERS)
    bots_table, deals_table = PNL_BOTS, PNL_DEALS
    orders_table, marks_table = PNL_OPEN_ORDERS, PNL_MARKS

    def __init__(self) -> None:
        super().__init__()
        self.owners: dict[str, Row] = {}
        self.days: dict[tuple[str, str], Row] = {}  # each bot's latest day, and this batch's
        # The days of ``days`` that may be no bot's latest at the end of the batch (dropped
        # then: a pass over every bot's day per batch cost more than the batch at 10,000).
        self._stale: list[tuple[str, str]] = []
        # Each bot's latest day with a row (in the table or this batch): a later day is a
        # row the table cannot hold yet (written with COPY, not looked up nor upserted).
        self.latest_day: dict[str, str] = {}
        self.store: ViewStore | None = None
        self.suffix = ""
        self._tallies: dict[int, tuple[Row, ...]] = {}  # (bot, its owner) by id() of bot
        # Each bot's day row already written to this batch's changes, and its day: the
        # next fact of that bot and day changes it in place (no look-up, no upsert).
        self._today: dict[str, tuple[str, Row]] = {}

    def load(self, store: ViewStore, suffix: str = "") -> None:
        super().load(store, suffix)
        self.store, self.suffix = store, suffix
        for row in store.select(PNL_OWNERS, suffix=suffix):
            self.owners[row["owner_id"]] = row
            self.restore_pending(row)
        daily = store.q(PNL_DAILY.name + suffix)
        if store.kind == "postgres":  # one index probe per bot, not a MAX per row
            latest = f"(bot_id, day) IN ({latest_walk(daily, ('bot_id',), 'day')})"
        else:
            latest = f"day = (SELECT MAX(day) FROM {daily} d WHERE d.bot_id = {daily}.bot_id)"
        for row in store.select(PNL_DAILY, latest, suffix=suffix):
            self.days[(row["bot_id"], row["day"])] = row
            self.latest_day[row["bot_id"]] = row["day"]

    def tallies(self, bot: Row) -> tuple[Row, ...]:
        # Asked at nearly every fill: kept by bot row (a bot's owner is set once, at
        # ``Bot.Created``, which forgets them).
        found = self._tallies.get(id(bot))
        if found is None or found[0] is not bot:
            found = self._tallies[id(bot)] = (bot, self.owner(bot["owner_id"]))
        return found

    @on("Bot.Created")
    def _bot_created(self, fact: Fact, out: Changes) -> None:
        super()._bot_created(fact, out)
        self._tallies.clear()

    def owner(self, owner_id: str) -> Row:
        row = self.owners.get(owner_id)
        if row is None:
            row = self.owners[owner_id] = {"owner_id": owner_id, **new_tally()}
            self.touch(row)
        return row

    def write_tally(self, tally: Row, out: Changes) -> None:
        out.upsert(PNL_BOTS if "bot_id" in tally else PNL_OWNERS, tally)

    # --- the daily series -----------------------------------------------------------------

    def day(self, bot: Row, fact: Fact, out: Changes) -> Row:
        bot_id, day = bot["bot_id"], fact.iso_time[:10]
        today = self._today.get(bot_id)
        if today is not None and today[0] == day:
            return today[1]
        row = self._day(bot_id, day, out)
        self._today[bot_id] = (day, row)
        return row

    def _day(self, bot_id: str, day: str, out: Changes) -> Row:
        key = (bot_id, day)
        row = self.days.get(key)
        if row is not None:
            out.upsert(PNL_DAILY, row)
            return row
        latest = self.latest_day.get(key[0])
        if latest is None or key[1] > latest:  # nearly always: time moves forward
            self.latest_day[key[0]] = key[1]
            if latest is not None:
                self._stale.append((key[0], latest))
            row = self.days[key] = _new_day(key)
            out.insert(PNL_DAILY, row)
            return row
        found = self.store.select(PNL_DAILY, "bot_id = ? AND day = ?", key,
                                  suffix=self.suffix) if self.store else []
        row = self.days[key] = found[0] if found else _new_day(key)
        self._stale.append(key)
        out.upsert(PNL_DAILY, row)
        return row

    def fee_paid(self, bot: Row, fee: Decimal, fact: Fact, out: Changes) -> None:
        today = self._today.get(bot["bot_id"])  # ``day``'s first case, written out: every fee
        if today is not None and today[0] == fact.iso_time[:10]:
            today[1]["fees"] += fee
        else:
            self.day(bot, fact, out)["fees"] += fee

    def deal_closed(self, bot: Row, deal: Row, fact: Fact, out: Changes) -> None:
        row = self.day(bot, fact, out)
        row["realized_pnl"] += deal["realized_pnl"]
        row["deals_closed"] += 1
        row["cumulative_realized"] = bot["realized_pnl"]

    def deal_corrected(self, bot: Row, pnl_change: Decimal, fact: Fact, out: Changes) -> None:
        row = self.day(bot, fact, out)
        row["realized_pnl"] += pnl_change
        row["cumulative_realized"] = bot["realized_pnl"]

    def after_batch(self, out: Changes) -> None:
        self._today.clear()
        latest = self.latest_day
        for key in self._stale:
            if latest[key[0]] != key[1]:
                self.days.pop(key, None)
        self._stale.clear()


def _new_day(key: tuple[str, str]) -> Row:
    return {"bot_id": key[0], "day": key[1], "realized_pnl": ZERO, "fees": ZERO,
            "deals_closed": 0, "cumulative_realized": ZERO}


# --- reading --------------------------------------------------------------------------------

SUMMED = ("realized_pnl", "unrealized_pnl", "fees", "deals_closed", "deals_open", "wins",
          "losses", "gross_profit", "gross_loss")
SHOWN = ("realized_pnl", "unrealized_pnl", "fees", "deals_closed", "deals_open", "win_rate",
         "profit_factor", "max_drawdown", "capital_committed", "roi")


def pnl_report(store: ViewStore, owner: str | None = None, bot: str | None = None,
               daily: bool = False, exclude_owners: tuple[str, ...] = ()) -> dict[str, Any]:
    """The scope's totals, and each bot's figures (Decimals; ``None`` where undefined),
    without the bots of ``exclude_owners``."""
    where, params = ["owner_id <> ?"] * len(exclude_owners), list(exclude_owners)
    if owner:
        where.append("owner_id = ?")
        params.append(owner)
    if bot:
        where.append("bot_id = ?")
        params.append(bot)
    bots = store.select(PNL_BOTS, " AND ".join(where), params, order="bot_id")
    marked = open_unrealized(store, "bot_id", [b["bot_id"] for b in bots])
    for row in bots:
        row["unrealized_pnl"] = marked.get(row["bot_id"], ZERO)
    report: dict[str, Any] = {"scope": {"owner": owner, "bot": bot}}
    if bot:
        scope = bots[0] if bots else {**new_tally(), "unrealized_pnl": ZERO}
    elif owner:
        rows = store.select(PNL_OWNERS, "owner_id = ?", (owner,))
        scope = rows[0] if rows else new_tally()
        scope["unrealized_pnl"] = open_unrealized(store, "owner_id", [owner]).get(owner, ZERO)
    else:
        scope = _sum(bots)
    report.update({k: scope[k] for k in SHOWN})
    report["bots"] = [_bot_entry(store, b, daily) for b in bots]
    return report


# A deals row read with its pair's mark (one query: a join with ``pnl_marks``); the shape
# converts what the database gives, it is no table of its own.
_MARKED = table(PNL_DEALS.name, key=("deal_id",), **DEAL_COLUMNS, pair_mark="money")


def marked_deals(store: ViewStore, where: str, params: Sequence[Any] = (),
                 order: str = "") -> list[Row]:
    """``pnl_deals`` rows matching ``where`` (on the deals' columns but ``pair``) with
    ``unrealized_pnl``, and an open one's ``mark_price``, at their pair's mark (zero for a
    finished deal)."""
    if store.before_select is not None:
        store.before_select()
    columns = ", ".join(f"d.{name}" for name in PNL_DEALS.column_names)
    text = (f"SELECT {columns}, m.price FROM {store.q(PNL_DEALS.name)} d LEFT JOIN "
            f"{store.q(PNL_MARKS.name)} m ON m.pair = d.pair WHERE {where}")
    text += f" ORDER BY {order}" if order else ""
    deals = [_MARKED.from_db(values) for values in store.query(text, params)]
    for deal in deals:
        price = deal.pop("pair_mark")
        if deal["status"] == "open":
            deal["mark_price"] = price
            deal["unrealized_pnl"] = unrealized(deal, price)
        else:
            deal["unrealized_pnl"] = ZERO
    return deals


def deals_by_ids(store: ViewStore, column: str, ids: Iterable[str],
                 open_only: bool = False) -> list[Row]:
    """``marked_deals`` whose ``column`` is one of ``ids`` (one query per CHUNK ids)."""
    wanted, found = list(dict.fromkeys(ids)), []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        where = f"d.{column} IN ({', '.join('?' * len(chunk))})"
        found += marked_deals(store, where + (" AND d.status = 'open'" if open_only else ""),
                              chunk)
    return found


def open_unrealized(store: ViewStore, column: str, ids: list[str]) -> dict[str, Decimal]:
    """The open deals' unrealized P/L summed per ``column`` value (``bot_id`` or
    ``owner_id``) in ``ids``, in deal id order; ids without an open deal are left out."""
    totals: dict[str, Decimal] = {}
    deals = deals_by_ids(store, column, ids, open_only=True)
    for deal in sorted(deals, key=lambda d: d["deal_id"]):
        totals[deal[column]] = totals.get(deal[column], ZERO) + deal["unrealized_pnl"]
    return totals


def _sum(rows: list[Row]) -> Row:
    total = {**new_tally(), "unrealized_pnl": ZERO}
    for row in rows:
        for key in SUMMED:
            total[key] += row[key]
    derive(total)
    # Drawdown, capital and ROI are of one owner's or bot's history: not summable.
    total.update(max_drawdown=None, capital_committed=None, roi=None)
    return total


def _bot_entry(store: ViewStore, row: Row, daily: bool) -> dict[str, Any]:
    entry = {"bot_id": row["bot_id"], "owner_id": row["owner_id"], "name": row["name"],
             "pair": row["pair"], **{k: row[k] for k in SHOWN}}
    if daily:
        entry["daily"] = [
            {k: d[k] for k in ("day", "realized_pnl", "fees", "deals_closed",
                               "cumulative_realized")}
            for d in store.select(PNL_DAILY, "bot_id = ?", (row["bot_id"],), order="day")]
    return entry
