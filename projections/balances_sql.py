"""``balances``' tables computed in SQL from the events (see ``sql_rebuild.py``): the moves
``Balances``' handlers make, worked out per order and per balance, then folded per balance in
log order with Python's rounding.

Per order (``pg_temp.lock_step``, over its fills in order): the filled amount, what it still
locks and what each fill releases (all that is left once filled, else the lesser of the
part filled and what is left). Per balance (``pg_temp.balance_step``, over its moves in log
order): free and locked move by each ``_move``; ``BalanceObserved`` replaces both; when the
last order locking there ends, what is left locked goes to the free balance.
"""

from __future__ import annotations

from typing import Any

from projections.balances import ACCOUNTS, BALANCES, OPEN_ORDERS
from projections.sql_rebuild import Builder
from projections.tables import Row, Table

ENDS = ("Order.Cancelled", "Order.Rejected", "Order.Expired", "Order.Lost")
TRANSFERS = ("ExchangeAccount.Deposited", "ExchangeAccount.Withdrawn")
FILLS = ("Order.Filled", "Order.TradeObserved")

FUNCTIONS = """
CREATE FUNCTION pg_temp.lock_step(st numeric[], amount numeric, part numeric, total numeric,
  start numeric) RETURNS numeric[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE filled numeric := coalesce(st[1], 0); locked numeric := coalesce(st[2], start);
  release numeric := NULL;
BEGIN
  filled := pg_temp.r28(filled + amount);
  IF locked <> 0 THEN
    IF filled = total THEN release := locked;
    ELSIF locked < part THEN release := locked;
    ELSE release := part; END IF;
    locked := pg_temp.r28(locked - release);
  END IF;
  RETURN ARRAY[filled, locked, release, (filled = total)::int];
END $$;
CREATE AGGREGATE pg_temp.lock_fold(numeric, numeric, numeric, numeric) (
  sfunc = pg_temp.lock_step, stype = numeric[]);
CREATE FUNCTION pg_temp.balance_step(st numeric[], how text, a numeric, b numeric, locks int)
  RETURNS numeric[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE free numeric := coalesce(st[1], 0); locked numeric := coalesce(st[2], 0);
  lockers numeric := coalesce(st[3], 0);
BEGIN
  IF how = 'observe' THEN
    free := pg_temp.r28(free + pg_temp.r28(a - free));
    locked := pg_temp.r28(locked + pg_temp.r28(b - locked));
  ELSIF how = 'settle' THEN
    lockers := lockers - 1;
    IF lockers = 0 THEN
      free := pg_temp.r28(free + locked);
      locked := 0;
    END IF;
  ELSE
    free := pg_temp.r28(free + a);
    locked := pg_temp.r28(locked + b);
    lockers := lockers + locks;
  END IF;
  RETURN ARRAY[free, locked, lockers];
END $$;
CREATE AGGREGATE pg_temp.balance_fold(text, numeric, numeric, int) (
  sfunc = pg_temp.balance_step, stype = numeric[]);
"""
ACCOUNT_ROWS = """
CREATE TEMP TABLE bl_acc ON COMMIT DROP AS
SELECT oid AS account_id, s->>'owner_id' AS owner_id, pg_temp.val(s->'kind') AS kind,
  s->>'exchange' AS exchange, s->>'quote_asset' AS quote_asset,
  s->'timestamp'->>'_data_' AS opened_at
FROM ev WHERE kind = 'ExchangeAccount.Opened'
"""
ORDERS = """
CREATE TEMP TABLE bl_ord ON COMMIT DROP AS
SELECT *, CASE WHEN side = 'buy' THEN quote ELSE base END AS lock_asset,
  CASE WHEN NOT locks THEN 0 WHEN side = 'buy' THEN pg_temp.r28(price * amount)
       ELSE amount END AS start
FROM (
  SELECT oid AS order_id, pos AS sub_pos, s->'timestamp'->>'_data_' AS at,
    s->>'owner_id' AS owner_id, s->>'exchange_account_id' AS account_id,
    CASE WHEN strpos(s->>'pair', '/') > 0
         THEN substr(s->>'pair', 1, strpos(s->>'pair', '/') - 1) ELSE s->>'pair' END AS base,
    CASE WHEN strpos(s->>'pair', '/') > 0
         THEN substr(s->>'pair', strpos(s->>'pair', '/') + 1) ELSE '' END AS quote,
    pg_temp.val(s->'side') AS side, pg_temp.val(s->'type') AS type,
    (s->'price'->>'_data_')::numeric AS price, (s->'amount'->>'_data_')::numeric AS amount,
    pg_temp.val(s->'type') <> 'market' AND s->'price'->>'_data_' IS NOT NULL AS locks
  FROM ev WHERE kind = 'Order.Submitted') o
"""
# Each fill with the order's state after it: filled, locked, what it released, whether done.
FILLED = """
CREATE TEMP TABLE bl_fill ON COMMIT DROP AS
SELECT f.order_id, f.pos, f.at, f.price, f.amount, f.fee, f.fee_currency,
  pg_temp.lock_fold(f.amount, CASE WHEN o.side = 'buy' THEN pg_temp.r28(o.price * f.amount)
                                   ELSE f.amount END, o.amount, o.start)
    OVER (PARTITION BY f.order_id ORDER BY f.pos) AS st
FROM (SELECT oid AS order_id, pos, s->'timestamp'->>'_data_' AS at,
        (s->'price'->>'_data_')::numeric AS price, (s->'amount'->>'_data_')::numeric AS amount,
        (s->'fee'->>'_data_')::numeric AS fee, s->>'fee_currency' AS fee_currency
      FROM ev WHERE kind = ANY(%(fills)s)) f
JOIN bl_ord o ON o.order_id = f.order_id AND f.pos > o.sub_pos
"""
# Where each order ended (its first end event, or its fill that filled it) and its last
# state before an end event.
ENDED = """
CREATE TEMP TABLE bl_end ON COMMIT DROP AS
WITH first_end AS (
  SELECT DISTINCT ON (e.oid) e.oid AS order_id, e.pos, e.s->'timestamp'->>'_data_' AS at
  FROM ev e JOIN bl_ord o ON o.order_id = e.oid AND e.pos > o.sub_pos
  WHERE e.kind = ANY(%(ends)s) ORDER BY e.oid, e.pos),
done AS (SELECT order_id, min(pos) AS pos FROM bl_fill WHERE st[4] = 1 GROUP BY order_id),
before AS (
  SELECT DISTINCT ON (f.order_id) f.order_id, f.st FROM bl_fill f
  JOIN first_end x ON x.order_id = f.order_id AND f.pos < x.pos
  ORDER BY f.order_id, f.pos DESC)
SELECT x.order_id, x.pos, x.at, b.st
FROM first_end x LEFT JOIN done d USING (order_id) LEFT JOIN before b USING (order_id)
WHERE d.pos IS NULL OR d.pos > x.pos
"""
# Every move: (owner, account, asset), when, in which order within the event, how, the two
# amounts, lockers added.
MOVES = """
CREATE TEMP TABLE bl_move ON COMMIT DROP AS
SELECT a.owner_id, a.account_id, e.s->>'asset' AS asset, e.pos, 0 AS step,
  e.s->'timestamp'->>'_data_' AS at, 'move' AS how,
  CASE WHEN e.kind LIKE '%%Deposited' THEN (e.s->'amount'->>'_data_')::numeric
       ELSE pg_temp.r28(-(e.s->'amount'->>'_data_')::numeric) END AS a, 0::numeric AS b,
  0 AS locks
FROM ev e JOIN bl_acc a ON a.account_id = e.oid WHERE e.kind = ANY(%(transfers)s)
UNION ALL
SELECT a.owner_id, a.account_id, e.s->>'asset', e.pos, 0, e.s->'timestamp'->>'_data_',
  'observe', (e.s->'free'->>'_data_')::numeric, (e.s->'locked'->>'_data_')::numeric, 0
FROM ev e JOIN bl_acc a ON a.account_id = e.oid
WHERE e.kind = 'ExchangeAccount.BalanceObserved' AND a.kind IS DISTINCT FROM 'paper'
UNION ALL
SELECT owner_id, account_id, lock_asset, sub_pos, 0, at, 'move', pg_temp.r28(-start), start, 1
FROM bl_ord WHERE locks
UNION ALL
SELECT o.owner_id, o.account_id, m.asset, f.pos, m.step, f.at, 'move', m.a, m.b, 0
FROM bl_fill f JOIN bl_ord o USING (order_id),
LATERAL (VALUES
  (0, o.lock_asset, f.st[3], pg_temp.r28(-f.st[3])),
  (1, o.quote, CASE WHEN o.side = 'buy' THEN pg_temp.r28(-pg_temp.r28(f.price * f.amount))
                    ELSE pg_temp.r28(f.price * f.amount) END, 0),
  (2, o.base, CASE WHEN o.side = 'buy' THEN f.amount ELSE pg_temp.r28(-f.amount) END, 0),
  (3, f.fee_currency, CASE WHEN f.fee <> 0 THEN pg_temp.r28(-f.fee) END, 0)
) m(step, asset, a, b)
WHERE m.a IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bl_end x WHERE x.order_id = f.order_id
                                      AND x.pos < f.pos)
UNION ALL
SELECT o.owner_id, o.account_id, o.lock_asset, f.pos, 4, NULL, 'settle', 0, 0, 0
FROM bl_fill f JOIN bl_ord o USING (order_id) WHERE f.st[4] = 1 AND o.locks
UNION ALL
SELECT o.owner_id, o.account_id, o.lock_asset, x.pos, 0, x.at, 'move', left_,
  pg_temp.r28(-left_), 0
FROM bl_end x JOIN bl_ord o USING (order_id),
LATERAL (SELECT CASE WHEN x.st IS NULL THEN o.start ELSE x.st[2] END AS left_) l
WHERE left_ <> 0
UNION ALL
SELECT o.owner_id, o.account_id, o.lock_asset, x.pos, 1, NULL, 'settle', 0, 0, 0
FROM bl_end x JOIN bl_ord o USING (order_id) WHERE o.locks
UNION ALL
SELECT s->>'owner_id', s->>'exchange_account_id', s->>'fee_currency', pos, 0,
  s->'timestamp'->>'_data_', 'move',
  pg_temp.r28(-pg_temp.r28((s->'buy_fee_change'->>'_data_')::numeric
                           + (s->'sell_fee_change'->>'_data_')::numeric)), 0, 0
FROM ev WHERE kind = 'Deal.FeesCorrected'
"""
BALANCE_ROWS = """
SELECT owner_id, account_id, asset, st[1], st[2], pg_temp.r28(st[1] + st[2]), at
FROM (SELECT owner_id, account_id, asset,
        pg_temp.balance_fold(how, a, b, locks ORDER BY pos, step) AS st,
        (array_agg(at ORDER BY pos DESC, step DESC) FILTER (WHERE at IS NOT NULL))[1] AS at
      FROM bl_move GROUP BY owner_id, account_id, asset) b
"""
OPEN_ROWS = """
SELECT o.order_id, o.owner_id, o.account_id, o.base, o.quote, o.side, o.type, o.price,
  o.amount, coalesce(last.st[1], 0), coalesce(last.st[2], o.start)
FROM bl_ord o
LEFT JOIN (SELECT DISTINCT ON (order_id) order_id, st FROM bl_fill
           ORDER BY order_id, pos DESC) last USING (order_id)
WHERE NOT EXISTS (SELECT 1 FROM bl_end x WHERE x.order_id = o.order_id)
  AND NOT EXISTS (SELECT 1 FROM bl_fill f WHERE f.order_id = o.order_id AND f.st[4] = 1)
"""
CHECKS = """
SELECT count(*) FROM ev WHERE kind = ANY(%(kinds)s)
  AND s->'timestamp'->>'_data_' NOT LIKE '%%+00:00'
"""
PARAMS = {"fills": list(FILLS), "ends": list(ENDS), "transfers": list(TRANSFERS)}


class BalancesSql(Builder):
    kinds = ("ExchangeAccount.Opened", *TRANSFERS, "ExchangeAccount.BalanceObserved",
             "Order.Submitted", *FILLS, *ENDS, "Deal.FeesCorrected")
    decimal_fields = ("amount", "price", "fee", "free", "locked", "buy_fee_change",
                      "sell_fee_change")

    def build(self, cur: Any) -> dict[Table, list[Row]]:
        cur.execute(CHECKS, {"kinds": list(self.kinds)})
        if cur.fetchone()[0]:
            raise ValueError("an event time not in UTC as stored")
        cur.execute(FUNCTIONS)
        for statement in (ACCOUNT_ROWS, ORDERS, FILLED, ENDED, MOVES):
            cur.execute(statement, PARAMS)
        return {table: _rows(cur, query, table.column_names)
                for table, query in ((ACCOUNTS, "SELECT account_id, owner_id, kind, exchange, "
                                      "quote_asset, opened_at FROM bl_acc"),
                                     (BALANCES, BALANCE_ROWS), (OPEN_ORDERS, OPEN_ROWS))}


def _rows(cur: Any, query: str, names: tuple[str, ...]) -> list[Row]:
    cur.execute(query, PARAMS)
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
