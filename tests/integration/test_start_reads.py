"""An engine worker's start reads what runs, not the log (PostgreSQL): finding the bots that
need an engine from the book, following them, and putting open positions back read a few of
the log's rows, however long the log grew before. Counted by PostgreSQL itself (its
statistics of rows read from the events table), the same on a loaded machine as on an
idle one."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.positions import Positions
from application.running_bots import RunningBots
from application.settings import _connect_kwargs, parse_database_url
from application.trading import Trading
from projections.paper_book import PaperBook, book_at_head
from tests.conftest import POSTGRES_URL
from tests.integration.test_paper_trading import venue
from tests.integration.test_restart_book import busy_world, candles  # noqa: F401 (fixture)
from tests.projection_stubs import catch_up, view_store

FILLER = 2000


def rows_read(trading: Trading, store) -> int:
    """Rows of the events table PostgreSQL has read so far (scans and index fetches), the
    counts of the application's one session and of the view store's flushed first."""
    datastore = trading.recorder.datastore
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
    store.conn.execute("SELECT pg_stat_force_next_flush()")
    with psycopg.connect(**_connect_kwargs(parse_database_url(POSTGRES_URL).env),
                         autocommit=True) as conn:
        ((read,),) = conn.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM "
            "pg_stat_user_tables WHERE schemaname = %s AND relname = 'trading_events'",
            (datastore.schema,)).fetchall()
    return read


@pytest.mark.parametrize("paths", ["fast paths", "TRADETAPE_LIBRARY_PATHS=1"])
def test_an_engine_workers_start_reads_a_few_rows_of_a_long_log(postgres_url, candles,  # noqa: F811
                                                                paths, monkeypatch):
    if "=" in paths:  # the library's own reads, appends and loads everywhere
        monkeypatch.setenv(*paths.split("="))
    world, _ = busy_world(postgres_url, candles)
    filler = world.trading.open_account(owner_id="u3", exchange="paper", quote_asset="USDT")
    for _ in range(FILLER):  # a long history of an account no bot trades from
        world.trading.deposit(filler, "USDT", Decimal("1"), actor="u3")
    store = view_store(postgres_url)
    catch_up(world.trading, store, [PaperBook])  # the book at the log's head
    world.trading.close()  # its sessions' counts are flushed as they end
    # one session: every read of the start below is counted before the next is asked
    trading = open_trading(f"{postgres_url}&pool_size=1&max_overflow=0", clock=world.clock,
                           ids=world.ids)
    try:
        head = trading.recorder.max_notification_id()
        before = rows_read(trading, store)
        book = lambda: book_at_head(trading, store)  # noqa: E731
        wanted = RunningBots(trading, restart_book=book)()
        runner = PaperTrading(trading, world.ids, venue)
        runner.restart_book = book
        failed = runner.follow_many([c.bot_id for c in wanted])
        Positions(trading, runner).resume()
        read = rows_read(trading, store) - before
    finally:
        trading.close()
        store.close()

    assert failed == {} and len(wanted) == 3  # the first user's bot and two of the second's
    assert read < head / 10, f"{read} rows of a {head}-event log read to start 3 bots"
