"""The read models over a real store (memory, SQLite, PostgreSQL): what each view shows after
a day of trading and a backtest, exactly once, rebuilt equal, and owned by one runner."""

from __future__ import annotations

import itertools
from decimal import Decimal
from uuid import UUID

import pytest

from domain.deals import Deal, DealStatus
from domain.orders import OrderSide, OrderType
from projections.audit import AUDIT_LOG, verify
from projections.balances import Balances, balances_report
from projections.frontend import FE_BOTS, FrontEnd, bot_list, order_list
from projections.leaderboard import Leaderboard, leaderboard_report
from projections.pnl import Pnl, pnl_report
from projections.portfolio import pnl_by_deal
from projections.reader import LogReader
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import ProjectionError, Projector
from projections.store import ProjectionConflict
from tests.projection_stubs import (
    CONFIG,
    a_day_of_trading,
    a_manual_order,
    backtest,
    candle_rows,
    catch_up,
    dump,
    one,
    saw_levels,
    view_store,
)


@pytest.fixture
def views(store_url, trading):
    """``(app, store)`` on the same database; closed afterwards."""
    app = trading(store_url)
    store = view_store(store_url)
    yield app, store
    store.close()


def test_balances_follow_deposits_locks_fills_and_observations(views):
    app, store = views
    day = a_day_of_trading(app)

    catch_up(app, store, [Balances])

    rows = {(r["account_id"], r["asset"]): r for r in balances_report(store, owner="alice")}
    usdt, btc = rows[(str(day.account), "USDT")], rows[(str(day.account), "BTC")]
    # 1000 - 100, lock 300 for the buy, fill 0.004 @ 29990 (+ fee 0.05) releasing 120,
    # cancel releasing 180, sell 0.004 @ 31000 less a fee of 0.124.
    assert (usdt["free"], usdt["locked"], usdt["total"]) == (
        Decimal("903.866"), Decimal(0), Decimal("903.866"))
    assert (btc["free"], btc["locked"]) == (Decimal(0), Decimal(0))
    eur = rows[(str(day.live_account), "EUR")]
    assert (eur["free"], eur["locked"], eur["total"]) == (Decimal(50), Decimal(5), Decimal(55))


def test_a_resting_buy_locks_price_times_amount_until_it_fills(views):
    app, store = views
    day = a_day_of_trading(app)
    account = str(day.account)

    order = a_manual_order(app, day.account, OrderSide.BUY, OrderType.LIMIT, "0.02",
                           "25000.50")
    catch_up(app, store, [Balances])
    usdt = one(store, "balances", "account_id = ? AND asset = 'USDT'", (account,))
    assert (usdt["free"], usdt["locked"]) == (Decimal("903.866") - Decimal("500.010"),
                                              Decimal("500.010"))
    order.fill(app.cause("engine"), trade_id="t-9", price=Decimal("25000"),
               amount=Decimal("0.02"), fee=Decimal("0.5"), fee_currency="USDT")
    app.save_all(order)
    catch_up(app, store, [Balances])

    usdt = one(store, "balances", "account_id = ? AND asset = 'USDT'", (account,))
    assert usdt["locked"] == 0
    assert usdt["free"] == Decimal("903.866") - Decimal("500.000") - Decimal("0.5")
    assert store.query(f"SELECT COUNT(*) FROM {store.q('balance_open_orders')}") == [(0,)]


def test_pnl_of_a_backtest_is_its_summary_and_the_deals_in_the_log(views):
    app, store = views
    result = backtest(app, candle_rows(saw_levels(6)), seed="pnl")

    catch_up(app, store, [Pnl])

    report = pnl_report(store)
    assert result.summary["deals_closed"] >= 5
    assert report["deals_closed"] == result.summary["deals_closed"]
    assert str(report["realized_pnl"]) == str(result.summary["realized_pnl"])
    deals = [app.repository.get(UUID(deal_id)) for (deal_id,) in store.query(
        f"SELECT deal_id FROM {store.q('pnl_deals')}")]
    closed = [d for d in deals if d.status is DealStatus.CLOSED]
    assert sum((d.realized_pnl for d in closed), Decimal(0)) == report["realized_pnl"]
    assert report["win_rate"] == Decimal(result.summary["win_rate"])
    [bot] = report["bots"]
    assert bot["bot_id"] == str(result.bot_id)
    assert bot["deals_open"] == result.summary["deals_open"]


def test_pnl_of_a_deal_follows_its_fills_and_marks_the_open_one(views):
    app, store = views
    backtest(app, candle_rows(saw_levels(2)[:-2]), seed="open")  # ends inside a deal

    catch_up(app, store, [Pnl])

    deal_row = one(store, "pnl_deals", "status = 'open'")
    deal = app.repository.get(UUID(deal_row["deal_id"]))
    assert isinstance(deal, Deal)
    assert (deal_row["units"], deal_row["cost"], deal_row["buy_fees"]) == (
        deal.units, deal.cost, deal.buy_fees)
    assert deal_row["safety_orders_used"] == deal.safety_orders_used
    mark = one(store, "pnl_marks", "pair = 'BTC/USDT'")["price"]
    assert "unrealized_pnl" not in deal_row  # worked out when read, at the pair's mark
    read = pnl_by_deal(store, [deal_row["deal_id"]])[deal_row["deal_id"]]
    assert (read["mark_price"], read["unrealized_pnl"]) == (mark, deal.unrealized_pnl(mark))
    assert read["unrealized_pnl"] < 0  # it was bought on the way down


def test_leaderboard_ranks_only_bots_whose_owner_opted_in(views):
    app, store = views
    first = backtest(app, candle_rows(saw_levels(3)), seed="first")
    second = backtest(app, candle_rows(saw_levels(5)), seed="second")
    hidden = backtest(app, candle_rows(saw_levels(4)), seed="hidden")
    for result in (first, second):
        app.set_leaderboard_opt_in(result.bot_id, True, actor="backtest")

    catch_up(app, store, [Leaderboard])

    board = leaderboard_report(store)
    assert [row["bot_id"] for row in board] == sorted(
        (str(first.bot_id), str(second.bot_id)),
        key=lambda b: -next(r["roi"] for r in board if r["bot_id"] == b))
    assert [row["rank"] for row in board] == [1, 2]
    assert str(hidden.bot_id) not in {row["bot_id"] for row in board}
    app.set_leaderboard_opt_in(first.bot_id, False, actor="backtest")
    catch_up(app, store, [Leaderboard])
    assert [row["bot_id"] for row in leaderboard_report(store)] == [str(second.bot_id)]


def test_front_end_lists_show_status_config_version_and_orders(views):
    app, store = views
    day = a_day_of_trading(app)

    catch_up(app, store, [FrontEnd])

    [bot] = bot_list(store, "alice")
    assert (bot["status"], bot["config_version"], bot["leaderboard_opt_in"]) == ("paused", 2, 1)
    orders = {r["order_id"]: r for r in store.select(
        PROJECTIONS["frontend"].tables[2], "owner_id = ?", ("alice",))}
    buy, sell = orders[str(day.buy)], orders[str(day.sell)]
    assert (buy["status"], buy["filled"], buy["average_price"], buy["reason"]) == (
        "cancelled", Decimal("0.004"), Decimal("29990"), "cancelled by the user")
    assert (sell["status"], sell["fees"]) == ("filled", Decimal("0.124"))
    assert order_list(store, "no-such-deal") == []


def a_refused_backtest(app, seed: str):
    """A backtest with 50 USDT for a base order of 100: its one deal is refused, cancelled
    without buying anything, and the bot stops in error."""
    from adapters.marketdata.csv_candles import candles_from_rows
    from application.bootstrap import run_backtest_on

    return run_backtest_on(candles_from_rows(candle_rows(saw_levels(2))), CONFIG,
                           fee_rate=Decimal("0.001"), balance=Decimal("50"),
                           store_url="memory", seed=seed, trading=app)


def test_a_deal_whose_base_order_was_refused_is_cancelled_not_closed(views):
    app, store = views
    traded = backtest(app, candle_rows(saw_levels(3)), seed="traded")
    refused = a_refused_backtest(app, seed="refused")
    assert refused.summary["bot_error"] and refused.summary["orders_rejected"] == 1
    for result in (traded, refused):
        app.set_leaderboard_opt_in(result.bot_id, True, actor="backtest")

    catch_up(app, store, batch_size=3)

    bots = {row["bot_id"]: row for row in store.select(FE_BOTS)}
    poor, rich = bots[str(refused.bot_id)], bots[str(traded.bot_id)]
    assert (poor["status"], poor["open_deal_id"]) == ("error", None)
    assert (poor["deals_opened"], poor["deals_closed"], poor["deals_cancelled"]) == (1, 0, 1)
    closed = traded.summary["deals_closed"]
    assert closed >= 3
    assert (rich["deals_closed"], rich["deals_cancelled"]) == (closed, 0)
    assert rich["deals_opened"] == closed + traded.summary["deals_open"]
    poor_pnl = pnl_report(store, bot=str(refused.bot_id))
    assert (poor_pnl["deals_closed"], poor_pnl["deals_open"], poor_pnl["win_rate"]) == (
        0, 0, None)
    assert pnl_report(store)["deals_closed"] == closed
    assert [row["bot_id"] for row in leaderboard_report(store)] == [str(traded.bot_id)]
    incremental = dump(store)
    rebuild(app, store, list(PROJECTIONS.values()), batch_size=1000)
    assert dump(store) == incremental


def test_audit_log_has_one_row_per_event_and_verifies(views):
    app, store = views
    a_day_of_trading(app)

    catch_up(app, store, [PROJECTIONS["audit"]])

    head = app.recorder.max_notification_id()
    rows = store.select(AUDIT_LOG, order="position")
    assert [r["position"] for r in rows] == [n.id for n in app.recorder.select_notifications(
        start=None, limit=1000)]
    assert rows[-1]["position"] == head
    deposit = next(r for r in rows if r["event_type"] == "Deposited")
    assert (deposit["actor"], deposit["summary"]) == ("alice", "deposited 1000 USDT")
    assert verify(app, store, head).intact


def test_incremental_views_equal_a_rebuild_row_for_row(views):
    app, store = views
    a_day_of_trading(app)
    backtest(app, candle_rows(saw_levels(4)), seed="a")
    catch_up(app, store, batch_size=7)
    backtest(app, candle_rows(saw_levels(3)[:-1]), seed="b")
    catch_up(app, store, batch_size=13)
    incremental = dump(store)

    rebuild(app, store, list(PROJECTIONS.values()), batch_size=1000)

    assert dump(store) == incremental
    assert sum(len(rows) for rows in incremental.values()) > 300


def test_a_batch_is_applied_once_even_when_two_runners_race(views):
    app, store = views
    backtest(app, candle_rows(saw_levels(2)), seed="race")
    first = Projector(app, store, [Pnl()], batch_size=50)
    second = Projector(app, store, [Pnl()], batch_size=50)
    first.start()
    second.start()

    first.catch_up()
    second.catch_up()  # its first commit is refused: it reloads and finds nothing to do

    alone = dump(store, [Pnl])
    rebuild(app, store, [Pnl])
    assert dump(store, [Pnl]) == alone


def test_a_commit_from_a_stale_position_is_refused_and_leaves_nothing(views):
    app, store = views
    backtest(app, candle_rows(saw_levels(1)), seed="stale")
    catch_up(app, store, [Pnl])
    before = dump(store, [Pnl])
    row = store.tracking()["pnl"]

    with pytest.raises(ProjectionConflict), store.transaction() as cur:
        store.execute(cur, f"DELETE FROM {store.q('pnl_bots')}")
        store.advance(cur, "pnl", row.generation, row.position - 1, row.position + 5)

    assert dump(store, [Pnl]) == before
    assert store.tracking()["pnl"].position == row.position


def test_tables_of_another_shape_ask_for_a_rebuild(views):
    app, store = views
    catch_up(app, store, [Pnl])
    with store.transaction() as cur:
        store.execute(cur, f"UPDATE {store.q('projection_tracking')} SET schema_hash = 'old' "
                      "WHERE name = 'pnl'")

    with pytest.raises(ProjectionError) as raised:
        catch_up(app, store, [Pnl])

    assert raised.value.code == "PROJECTION_SCHEMA_CHANGED"
    rebuild(app, store, [Pnl])
    catch_up(app, store, [Pnl])  # fine again


def test_readers_see_the_old_view_until_the_rebuild_swaps(views, store_url):
    app, store = views
    backtest(app, candle_rows(saw_levels(2)), seed="old")
    catch_up(app, store, [Pnl])
    old = pnl_report(store)["deals_closed"]
    backtest(app, candle_rows(saw_levels(3)), seed="new")
    reader = view_store(store_url) if store_url != "memory" else store
    seen = []

    rebuild(app, store, [Pnl], batch_size=40,
            on_progress=lambda done, head: seen.append(pnl_report(reader)["deals_closed"]))

    assert len(seen) > 3 and set(seen) == {old}
    assert pnl_report(reader)["deals_closed"] > old
    if reader is not store:
        reader.close()


def test_the_log_reader_reads_what_the_library_reads(views):
    app, store = views
    a_day_of_trading(app)
    library = [(n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
               for n in app.recorder.select_notifications(start=None, limit=1000)]

    reader = LogReader(app, store)

    assert [(*row[:4], bytes(row[4])) for row in reader.page(0, 1000)] == library
    assert [row[0] for row in reader.page(3, 4, stop=6)] == [n[0] for n in library[3:6]]
    assert reader.head() == library[-1][0]


def test_the_log_reader_gives_the_same_rows_and_recorded_times_through_the_library(
        views, store_url, monkeypatch):
    """``TRADETAPE_LIBRARY_PATHS=1`` reads the log through ``select_notifications``: the
    same rows, recorded times included (time travel and the audit's ``recorded_at``)."""
    app, store = views
    a_day_of_trading(app)
    ours = LogReader(app, store)
    monkeypatch.setenv("TRADETAPE_LIBRARY_PATHS", "1")
    library = LogReader(app, store)

    def rows(reader, *args):
        return [(*row[:4], bytes(row[4]), row[5]) for row in reader.page(*args)]

    assert (library.sql is None and ours.sql is not None) or store_url == "memory"
    every = rows(library, 0, 1000)
    assert every == rows(ours, 0, 1000) and len(every) > 12
    assert rows(library, 3, 4, 6) == rows(ours, 3, 4, 6) == every[3:6]
    kept = store_url != "memory"
    assert all((row[5] is not None) == kept for row in every)


def test_pages_read_ahead_meanwhile_come_joined_as_one_batch_in_log_order(
        persistent_store_url, trading):
    import time

    from projections.reader import ReadAhead

    app = trading(persistent_store_url)
    store = view_store(persistent_store_url)
    try:
        a_day_of_trading(app)
        every = [row[0] for row in LogReader(app, store).page(0, 10_000)]
        ahead = ReadAhead(LogReader(app, store), 0, 3, None, join=True)
        try:
            deadline = time.monotonic() + 10  # the caller is busy while two pages are read
            while not ahead._queue.full() and time.monotonic() < deadline:
                time.sleep(0.01)
            batches = [[row[0] for row in page] for page in ahead]
        finally:
            ahead.close()
    finally:
        store.close()
    assert [p for batch in batches for p in batch] == every
    assert len(batches[0]) == 6  # the page taken and the one read meanwhile: one batch
    assert len(every) > 12 and all(len(batch) <= 6 for batch in batches)  # twice a page


def test_a_following_runner_applies_new_events_as_they_arrive(persistent_store_url, trading):
    store_url = persistent_store_url
    import threading
    import time

    app = trading(store_url)
    store, reader = view_store(store_url), view_store(store_url)
    projector = Projector(app, store, [Balances()], batch_size=100)
    stop = threading.Event()
    # PostgreSQL wakes the runner with NOTIFY: a poll of a minute must not be waited for.
    poll = 60.0 if store_url.startswith("postgres") else 0.05
    follower = threading.Thread(target=projector.follow, args=(stop,), kwargs={"poll": poll})
    follower.start()
    try:
        time.sleep(0.3)  # caught up with the empty log, waiting
        account = app.open_account(owner_id="carol", exchange="binance", quote_asset="USDT")
        app.deposit(account, "USDT", Decimal("12.5"), actor="carol")
        deadline = time.monotonic() + 10
        while not (rows := balances_report(reader, owner="carol")) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(r["asset"], r["free"]) for r in rows] == [("USDT", Decimal("12.5"))]
    finally:
        stop.set()
        follower.join(timeout=5)
        store.close()
        reader.close()
    assert not follower.is_alive()


def test_a_wave_appended_while_a_follower_takes_small_batches_is_taken_in_large_ones(
        persistent_store_url, trading):
    """A follower near the head takes the log a small batch at a time; a wave appended
    meanwhile (thousands of events at once: a take-profit wave) goes in large batches
    instead of the small ones it started with, and the views still equal a rebuild."""
    app = trading(persistent_store_url)
    store = view_store(persistent_store_url)
    try:
        a_day_of_trading(app)
        head = app.recorder.max_notification_id()
        projector = Projector(app, store, [cls() for cls in PROJECTIONS.values()],
                              batch_size=4, max_batch=500)
        projector.catch_up(until=head - 6)  # a few events behind: small batches
        ends: list[int] = []

        def heard(position: int, _head: int) -> None:
            if not ends:  # the wave lands after the first small batch
                backtest(app, candle_rows(saw_levels(4)), seed="wave")
            ends.append(position)

        projector.catch_up(on_progress=heard)
        wave = app.recorder.max_notification_id() - head
        batches = [b - a for a, b in itertools.pairwise(ends)]
        assert wave > 100 and ends[-1] == head + wave
        assert max(batches) > 4 * 20  # not ~wave / 4 batches of 4
        incremental = dump(store)
        rebuild(app, store, list(PROJECTIONS.values()), batch_size=1000)
        assert dump(store) == incremental
    finally:
        store.close()


def test_positions_move_when_a_batch_is_committed_not_when_it_is_made(
        persistent_store_url, trading):
    """Far behind, batches are committed by the writer's thread while the next is made: a
    projector's positions (what ``lag`` and ``/health`` count) move only once each batch's
    rows are readable. The commit is held back by another writer holding the tracking rows."""
    import threading
    import time

    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    app = trading(persistent_store_url)
    store = view_store(persistent_store_url)
    a_day_of_trading(app)
    head = app.recorder.max_notification_id()
    projector = Projector(app, store, [Balances()], batch_size=4)
    projector.start()
    before = projector.positions()
    database = parse_database_url(persistent_store_url)
    if store.kind == "postgres":
        holder = psycopg.connect(**_connect_kwargs(database.env))
        holder.execute(f"SELECT * FROM {store.q('projection_tracking')} FOR UPDATE")
    else:
        import sqlite3

        holder = sqlite3.connect(store.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    catching_up = threading.Thread(target=projector.catch_up)
    catching_up.start()
    try:
        deadline = time.monotonic() + 30
        while projector.tracked[0].position < 8 and time.monotonic() < deadline:
            time.sleep(0.01)  # the first batches made (the writer waits on the first)
        assert projector.tracked[0].position >= 8
        assert projector.positions() == before
    finally:
        holder.rollback()
        holder.close()
        catching_up.join(60)
        store.close()
    assert projector.positions() == {"balances": head}
