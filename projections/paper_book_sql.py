"""``paper_book``'s tables computed in SQL from the events (see ``sql_rebuild.py``): what
``PaperBook``'s handlers leave after the whole log, worked out set by set.

An order lives from its ``Order.Submitted`` until it is dropped. It *closes* at the first
fill that brings its filled amount to its amount, or at its first final event (lost,
cancelled, rejected, expired), whichever comes first. It is dropped when it closes without
a deal, or, with one, at its deal's first ``Bot.DealFinished`` after it closed; a deal
finishing while the order is open takes the deal off the order (kept, then dropped when it
closes). Fills count while the order lives (a fill after it is dropped is of an order the
book no longer knows); ``Order.Filled`` ones also move the account's fills and assets. Every
running sum adds in log order, rounding as Python's Decimal does at each step.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from projections.paper_book import (
    BOOK_ASSETS,
    BOOK_BOTS,
    BOOK_DEPOSITS,
    BOOK_FILLS,
    BOOK_ORDERS,
    FINAL,
    HALTS,
    RUNS,
)
from projections.sql_rebuild import Builder
from projections.tables import Row, Table

FILLS = ("Order.Filled", "Order.TradeObserved")
DEALS = ("Bot.DealStarted", "Bot.DealFinished")
TRANSFERS = ("ExchangeAccount.Deposited", "ExchangeAccount.Withdrawn")

BOTS = """
SELECT oid, min(pos),
  coalesce((array_agg((kind = ANY(%(runs)s))::int ORDER BY pos DESC)
            FILTER (WHERE kind = ANY(%(status)s)))[1], 0),
  (array_agg(CASE WHEN kind = 'Bot.DealStarted' THEN pg_temp.uid(s->'deal_id') END
             ORDER BY pos DESC) FILTER (WHERE kind = ANY(%(deals)s)))[1]
FROM ev WHERE kind LIKE 'Bot.%%' GROUP BY oid
"""
SUBMITTED = """
CREATE TEMP TABLE pb_sub ON COMMIT DROP AS
SELECT oid AS order_id, pos AS sub_pos, pg_temp.uid(s->'deal_id') AS deal_id,
  s->>'exchange_account_id' AS account_id, s->>'pair' AS pair,
  pg_temp.val(s->'side') AS side, s->'amount'->>'_data_' AS amount_text
FROM ev WHERE kind = 'Order.Submitted'
"""
# Each fill of a known order with the order's filled amount after it.
FILLED = """
CREATE TEMP TABLE pb_fill ON COMMIT DROP AS
SELECT f.oid AS order_id, f.pos, f.kind = 'Order.Filled' AS books,
  (f.s->'price'->>'_data_')::numeric AS price, (f.s->'amount'->>'_data_')::numeric AS amount,
  (f.s->'fee'->>'_data_')::numeric AS fee,
  pg_temp.sum28((f.s->'amount'->>'_data_')::numeric) OVER (PARTITION BY f.oid ORDER BY f.pos)
    AS filled
FROM ev f JOIN pb_sub o ON o.order_id = f.oid AND f.pos > o.sub_pos
WHERE f.kind = ANY(%(fills)s)
"""
# When each order closed (c), its deal finished after it was placed (df), it was dropped.
LIFE = """
CREATE TEMP TABLE pb_life ON COMMIT DROP AS
SELECT o.*, c.c, df.df,
  CASE WHEN o.deal_id IS NOT NULL AND df.df IS NOT NULL AND c.c < df.df THEN df.df
       WHEN o.deal_id IS NULL OR df.df IS NOT NULL THEN c.c END AS dropped
FROM pb_sub o
LEFT JOIN (
  SELECT order_id, min(pos) AS c FROM (
    SELECT f.order_id, f.pos FROM pb_fill f JOIN pb_sub o USING (order_id)
    WHERE f.filled = o.amount_text::numeric
    UNION ALL
    SELECT e.oid, e.pos FROM ev e JOIN pb_sub o ON o.order_id = e.oid AND e.pos > o.sub_pos
    WHERE e.kind = ANY(%(final)s)) closing GROUP BY order_id) c USING (order_id)
LEFT JOIN (
  SELECT o.order_id, min(e.pos) AS df FROM pb_sub o
  JOIN ev e ON e.kind = 'Bot.DealFinished' AND pg_temp.uid(e.s->'deal_id') = o.deal_id
    AND e.pos > o.sub_pos
  GROUP BY o.order_id) df USING (order_id)
"""
ORDERS = """
SELECT l.order_id, l.sub_pos, CASE WHEN l.df IS NULL THEN l.deal_id END, l.account_id, l.pair,
  l.side, l.amount_text, coalesce(last.filled, 0), (l.c IS NULL)::int
FROM pb_life l LEFT JOIN (
  SELECT DISTINCT ON (order_id) order_id, filled FROM pb_fill ORDER BY order_id, pos DESC
) last USING (order_id)
WHERE l.dropped IS NULL
"""
# The fills that move the book, with the sign of their side and their notional.
BOOKED = """
CREATE TEMP TABLE pb_booked ON COMMIT DROP AS
SELECT f.pos, l.account_id, l.pair, f.amount, f.fee, pg_temp.r28(f.price * f.amount) AS n,
  CASE WHEN l.side = 'buy' THEN 1 ELSE -1 END AS sign,
  CASE WHEN strpos(l.pair, '/') > 0 THEN substr(l.pair, 1, strpos(l.pair, '/') - 1)
       ELSE l.pair END AS base_asset,
  CASE WHEN strpos(l.pair, '/') > 0 THEN substr(l.pair, strpos(l.pair, '/') + 1)
       ELSE '' END AS quote_asset
FROM pb_fill f JOIN pb_life l USING (order_id)
WHERE f.books AND (l.dropped IS NULL OR f.pos <= l.dropped)
"""
# quote - notional - fee (a sell: + notional), base + amount: each operation rounds.
BOOK_FILL_ROWS = """
SELECT account_id, pair, pg_temp.sum28(q ORDER BY pos, step),
  pg_temp.sum28(b ORDER BY pos, step)
FROM pb_booked, LATERAL (VALUES (0, -sign * n, sign * amount), (1, -fee, NULL)) m(step, q, b)
GROUP BY account_id, pair
"""
ASSET_ROWS = """
SELECT account_id, asset, pg_temp.sum28(change ORDER BY pos, step) FROM pb_booked,
LATERAL (VALUES (0, quote_asset, -sign * n), (1, quote_asset, -fee),
                (2, base_asset, pg_temp.r28(sign * amount))) m(step, asset, change)
GROUP BY account_id, asset
"""
DEPOSIT_ROWS = """
SELECT oid, s->>'asset', pg_temp.sum28(pg_temp.r28(
  CASE WHEN kind LIKE '%%Withdrawn' THEN -1 ELSE 1 END * (s->'amount'->>'_data_')::numeric)
  ORDER BY pos)
FROM ev WHERE kind = ANY(%(transfers)s) GROUP BY oid, s->>'asset'
"""
PARAMS = {"runs": list(RUNS), "status": list(RUNS + HALTS), "deals": list(DEALS),
          "fills": list(FILLS), "final": list(FINAL), "transfers": list(TRANSFERS)}


class PaperBookSql(Builder):
    kinds = ("Bot.Created", *RUNS, *HALTS, *DEALS, "Order.Submitted", *FILLS, *FINAL,
             *TRANSFERS)
    decimal_fields = ("amount", "price", "fee")

    def build(self, cur: Any) -> dict[Table, list[Row]]:
        for statement in (SUBMITTED, FILLED, LIFE, BOOKED):
            cur.execute(statement, PARAMS)
        return {
            BOOK_BOTS: _rows(cur, BOTS, ("bot_id", "position", "running", "open_deal_id")),
            BOOK_ORDERS: _rows(cur, ORDERS, BOOK_ORDERS.column_names, amount=True),
            BOOK_FILLS: _rows(cur, BOOK_FILL_ROWS, BOOK_FILLS.column_names),
            BOOK_ASSETS: _rows(cur, ASSET_ROWS, BOOK_ASSETS.column_names),
            BOOK_DEPOSITS: _rows(cur, DEPOSIT_ROWS, BOOK_DEPOSITS.column_names),
        }


def _rows(cur: Any, query: str, names: tuple[str, ...], amount: bool = False) -> list[Row]:
    cur.execute(query, PARAMS)
    rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    if amount:  # the order's amount as stored (its own digits and scale)
        for row in rows:
            row["amount"] = Decimal(row["amount"])
    return rows
