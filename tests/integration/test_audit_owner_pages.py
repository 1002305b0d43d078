"""An owner's audit page on PostgreSQL is planned for that owner each time. Before, after
five pages the connection's prepared statement kept one plan whatever the owner: one made
for a busy owner (back along the log by position, keeping their rows) walked the whole log
for an owner with a few events, where their aggregates' index finds them at once."""

from __future__ import annotations

from contextlib import closing

from projections.audit import AUDIT_LOG
from projections.audit_queries import audit_page
from projections.balances import ACCOUNTS
from projections.frontend import FE_BOTS, FE_DEALS, FE_ORDERS, FE_POSITIONS
from tests.projection_stubs import view_store

EVENTS = 100_000
RARE = (10, 20_010, 40_010, 60_010, 80_010)  # the positions of the rare owner's events


def a_log(store) -> None:
    """100 busy owners (2 bots, 10 deals, 40 orders each) whose aggregates have every event
    of the log but five, and ``rare``, whose one bot has those five."""
    q = store.q
    tables = (AUDIT_LOG, FE_BOTS, FE_DEALS, FE_ORDERS, FE_POSITIONS, ACCOUNTS)
    with store.transaction() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{store.schema}"')  # (no log made it)
        for t in tables:
            store.create_table(cur, t, "", 1)
        cur.execute(f"INSERT INTO {q('fe_bots')} (bot_id, owner_id, status) SELECT 'bot-' "
                    "|| i, 'u' || (i % 100), 'running' FROM generate_series(0, 199) i "
                    "UNION ALL SELECT 'bot-rare', 'rare', 'running'")
        cur.execute(f"INSERT INTO {q('fe_deals')} (deal_id, bot_id, owner_id, status) "
                    "SELECT 'deal-' || i, 'bot-' || (i % 200), 'u' || (i % 100), 'closed' "
                    "FROM generate_series(0, 999) i")
        cur.execute(f"INSERT INTO {q('fe_orders')} (order_id, deal_id, owner_id, status) "
                    "SELECT 'order-' || i, 'deal-' || (i % 1000), 'u' || (i % 100), 'filled' "
                    "FROM generate_series(0, 3999) i")
        cur.execute(f"INSERT INTO {q('fe_positions')} (aggregate_id, owner_id) SELECT "
                    "'pos-' || i, 'u' || (i % 100) FROM generate_series(0, 199) i")
        cur.execute(f"INSERT INTO {q('balance_accounts')} (account_id, owner_id) SELECT "
                    "'acct-' || i, 'u' || i FROM generate_series(0, 99) i")
        cur.execute(
            f"INSERT INTO {q('audit_log')} (position, recorded_at, aggregate_type, "
            "aggregate_id, version, event_type, actor, correlation_id, summary, hash, at) "
            "SELECT i, '2026-01-01', 'Order', CASE WHEN i % 10 < 7 THEN 'order-' || (i % 4000) "
            "WHEN i % 10 < 9 THEN 'deal-' || (i % 1000) ELSE 'bot-' || (i % 200) END, "
            "i / 4000, 'Order.Filled', CASE WHEN i % 10000 = 5000 THEN 'operator:bench' "
            "WHEN i % 500 = 250 THEN 'user-' || (i % 7) ELSE 'engine' END, '', '', '', '' "
            f"FROM generate_series(1, {EVENTS}) i")
        rare = ", ".join(map(str, RARE))
        cur.execute(f"UPDATE {q('audit_log')} SET aggregate_id = 'bot-rare' "
                    f"WHERE position IN ({rare})")
    store.conn.execute("ANALYZE " + ", ".join(q(t.name) for t in tables))


def rows_read(store) -> int:
    """Rows of the audit log read so far (this connection's counts sent first)."""
    store.conn.execute("SELECT pg_stat_force_next_flush()")  # (sent once it is idle)
    store.conn.execute("SELECT pg_stat_clear_snapshot()")
    ((read,),) = store.query(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM "
        "pg_stat_user_tables WHERE schemaname = ? AND relname = ?",
        (store.schema, AUDIT_LOG.name))
    return read


def test_a_rare_owners_page_after_a_busy_owners_pages_reads_their_rows_alone(postgres_url):
    with closing(view_store(postgres_url)) as store:
        a_log(store)
        for _ in range(30):  # prepared after five runs, its plan kept soon after
            assert len(audit_page(store, owner="u17").rows) == 50
        before = rows_read(store)
        page = audit_page(store, owner="rare")
        assert [row["position"] for row in page.rows] == sorted(RARE, reverse=True)
        assert rows_read(store) - before < 100  # (before: the whole log, 100,000)
