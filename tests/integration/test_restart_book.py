"""A start restores the paper venues from the ``paper_book`` projection (and a few queries for
the bots, their deals and orders) instead of a scan of the log: the same engines, the same
orders resting, the same balances to the last digit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from application.paper_trading import PaperTrading
from domain.dca import DcaConfig
from projections.paper_book import PaperBook, book_at_head
from tests.integration.test_paper_trading import BOT, World, venue
from tests.projection_stubs import catch_up, view_store


@pytest.fixture(scope="module")
def candles():
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series

    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


def restored(runner: PaperTrading) -> dict:
    """What a resumed runner holds: per market, its venue's balances and resting orders, and
    each engine's deal, orders and their states."""
    state = {}
    for key, market in runner._markets.items():
        engines = {bot_id: (engine.deal.id if engine.deal else None,
                            {cid: (o.id, o.status, o.filled) for cid, o in engine.orders.items()})
                   for bot_id, engine in market.engines.items()}
        state[key] = (market.venue.fetch_balance(),
                      sorted(o.client_order_id for o in market.venue.fetch_open_orders()),
                      list(engines.items()))
    return state


def busy_world(url: str, candles) -> tuple[World, list]:
    """Two users: one bot trading from the start, and a second account (a deposit, a
    withdrawal) with three bots: two trading (one is paused later), one never started."""
    world = World(url, "book")
    trading = world.trading
    account = trading.open_account(owner_id="u2", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("7000.50"), actor="u2")
    trading.withdraw(account, "USDT", Decimal("0.25"), actor="u2")
    bots = []
    for name, take_profit in (("second", "0.7"), ("third", "1.1"), ("idle", "0.5")):
        bot_id = trading.create_bot(owner_id="u2", name=name, exchange_account_id=str(account),
                                    config=DcaConfig.from_mapping(
                                        {**BOT, "take_profit_pct": take_profit}))
        bots.append(bot_id)
        if name != "idle":
            trading.start_bot(bot_id, actor="u2")
            world.runner.follow(bot_id)
    world.feed(candles, 0, 400)
    return world, bots


def test_a_start_from_the_book_restores_what_a_scan_of_the_log_restores(postgres_url, candles,
                                                                         monkeypatch):
    world, (_, third, idle) = busy_world(postgres_url, candles)
    store = view_store(postgres_url)
    try:
        catch_up(world.trading, store, [PaperBook])  # the projection stops here...
        world.feed(candles, 400, 700)  # ...and these events are read from the log at start
        with world.runner.lock:
            world.trading.pause_bot(third, actor="u2")
        world.feed(candles, 700, 760)
        scanned = PaperTrading(world.trading, world.ids, venue)
        scanned.resume()

        import application.paper_follow as module

        def no_scan(_trading):
            raise AssertionError("a start with a book reads no list of bots from the log")

        monkeypatch.setattr(module, "_bot_ids", no_scan)
        booked = PaperTrading(world.trading, world.ids, venue)
        booked.restart_book = lambda: book_at_head(world.trading, store)
        booked.resume()
    finally:
        store.close()

    assert restored(booked) == restored(scanned)
    assert booked.bot_ids == scanned.bot_ids and idle not in booked.bot_ids
    engines = [e for m in booked._markets.values() for e in m.engines.values()]
    assert any(e.deal is not None for e in engines)  # deals were open...
    assert any(m.venue.fetch_open_orders() for m in booked._markets.values())  # ...orders rest
    for deal_id in {e.deal.id for e in engines if e.deal is not None}:
        assert booked._log.orders_of(deal_id) == scanned._log.orders_of(deal_id) != []
    for account, pair in booked._markets:
        assert booked._log.fills(account, pair) == scanned._log.fills(account, pair)
        assert booked._log.asset_fills(account) == scanned._log.asset_fills(account)


def test_an_engine_workers_first_share_taken_from_the_book_equals_a_resume_from_a_scan(
        postgres_url, candles, monkeypatch):
    """An engine worker's start (PostgreSQL): the bots that need an engine found from the
    book, then followed all at once (a few queries, no scan of the log's orders and fills),
    hold what a runner resumed from a scan of the log holds."""
    from application import paper_log
    from application.running_bots import RunningBots

    world, (_, third, idle) = busy_world(postgres_url, candles)
    store = view_store(postgres_url)
    try:
        catch_up(world.trading, store, [PaperBook])
        world.feed(candles, 400, 700)  # read from the log after the book's position
        with world.runner.lock:
            world.trading.pause_bot(third, actor="u2")
        world.feed(candles, 700, 760)
        scanned = PaperTrading(world.trading, world.ids, venue)
        scanned.resume()
        from_log = RunningBots(world.trading)()

        def no_scan(*_args, **_kwargs):
            raise AssertionError("a worker's start with a book scans no orders and fills")

        monkeypatch.setattr(paper_log, "read_log", no_scan)
        wanted = RunningBots(world.trading,
                             restart_book=lambda: book_at_head(world.trading, store))()
        taken = PaperTrading(world.trading, world.ids, venue)
        taken.restart_book = lambda: book_at_head(world.trading, store)
        failed = taken.follow_many([c.bot_id for c in wanted])
    finally:
        store.close()

    assert sorted(wanted, key=str) == sorted(from_log, key=str)
    assert failed == {} and idle not in taken.bot_ids and third in taken.bot_ids  # (a deal)
    assert in_any_order(restored(taken)) == in_any_order(restored(scanned))
    assert any(m.venue.fetch_open_orders() for m in taken._markets.values())


def in_any_order(state: dict) -> dict:
    return {key: (balances, resting, sorted(engines, key=str))
            for key, (balances, resting, engines) in state.items()}


def test_a_runner_resumed_from_the_book_trades_on_as_one_resumed_from_a_scan(
        postgres_url, tmp_path, candles):
    """The same candles after either start give the same decisions: the runner restored from
    the book is the runner restored from the log."""

    def decisions(url: str, with_book: bool) -> list:
        world, _ = busy_world(url, candles)
        store = view_store(url)
        try:
            catch_up(world.trading, store, [PaperBook])
            world.restart()
            if with_book:
                world.runner = PaperTrading(world.trading, world.ids, venue)
                world.runner.restart_book = lambda: book_at_head(world.trading, store)
                world.runner.resume()
            world.feed(candles, 400, 900)
            from application.replay import read_log

            return [(n.topic, n.state) for n in read_log(world.trading)]
        finally:
            store.close()
            world.trading.close()

    second = postgres_url.replace("?schema=", "?schema=b")
    try:
        assert decisions(postgres_url, True) == decisions(second, False)
    finally:
        _drop_schema(second)


def _drop_schema(url: str) -> None:
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{env["POSTGRES_SCHEMA"]}" CASCADE')


def test_a_start_reads_the_book_once_the_projectors_copy_equals_its_tables(postgres_url,
                                                                           candles):
    """The server's projector loads the book (its tables, in one consistent snapshot) and
    offers a copy to the restart book of the same store: the start reads the tables once.
    What it restores equals the book read from the tables; the projector's own book moves
    on without changing the copy; once taken, or once too far back, it is not offered."""
    from projections import paper_book
    from projections.paper_book import BookAtHead
    from projections.runner import Projector

    world, _ = busy_world(postgres_url, candles)
    trading = world.trading
    account = trading.open_account(owner_id="u3", exchange="paper", quote_asset="USDT")

    def deposit(amount: str) -> None:
        trading.deposit(account, "USDT", Decimal(amount), actor="u3")

    store, plain = view_store(postgres_url), view_store(postgres_url)
    try:
        catch_up(trading, store, [PaperBook])
        deposit("10.5")  # after the tables' position: read from the log
        projector = Projector(trading, store, [PaperBook()])
        projector.start()  # loads the tables, offers a copy
        read = []
        select = store.select
        store.select = lambda table, *a, **k: read.append(table.name) or select(table, *a, **k)
        shared = BookAtHead(trading, store)
        from_copy = shared()
        assert not [name for name in read if name.startswith("paper_book")]
        assert paper_book.take_loaded(store) is None  # taken once
        from_tables = book_at_head(trading, plain)
        assert from_copy == from_tables and from_copy.orders
        assert from_copy.deposits[str(account)] == {"USDT": Decimal("10.5")}
        projector.catch_up()  # the projector's book moves on; the copy did not move with it
        deposit("0.25")
        assert shared() == book_at_head(trading, plain)
        assert shared().deposits[str(account)] == {"USDT": Decimal("10.75")}
        projector.start()
        projector._offered_until = projector.positions()[PaperBook.name] - 1
        deposit("1")
        projector.catch_up()
        assert paper_book.take_loaded(store) is None  # moved on: withdrawn, not kept
    finally:
        store.close()
        plain.close()
