"""A rebuild on PostgreSQL computes ``paper_book`` and ``balances`` in SQL
(``projections/sql_rebuild.py``): the rows equal those their Python handlers write, for
random backtests and account activity, paper trading with cancels, paused bots and deals
that finish with orders open, and manual orders and observed balances; the SQL rounds every
step as Python's Decimal does (28 digits, half even, ties included); and what the SQL
cannot read exactly is rebuilt in Python instead, with the same rows."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from projections import sql_rebuild
from projections.balances import Balances
from projections.paper_book import PaperBook
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from tests.conftest import POSTGRES_URL, require_postgres
from tests.integration.conftest import T0
from tests.integration.test_projection_properties import operations, play, postgres_store
from tests.integration.test_restart_book import busy_world
from tests.projection_stubs import CONFIG as BOT
from tests.projection_stubs import dump, view_store

# (with another projection: built alone, they are rebuilt in Python, faster then)
BOOK = [PaperBook, Balances, PROJECTIONS["backtests"]]
FALLBACK, TAKEN = "in Python instead", "in SQL up to position"


def both_ways(app, store, caplog, classes=BOOK) -> tuple[dict, dict]:
    """The tables rebuilt with the SQL path, then with the Python path."""
    dumps = []
    for enabled in (True, False):
        sql_rebuild.ENABLED = enabled
        sql_rebuild.BUILT = {"paper_book", "balances"}  # (TRADETAPE_SQL_REBUILD=all)
        try:
            rebuild(app, store, classes, batch_size=97)
        finally:
            sql_rebuild.ENABLED, sql_rebuild.BUILT = None, None  # the environment's
        dumps.append(dump(store, classes))
    return dumps[0], dumps[1]


@pytest.fixture(autouse=True)
def _postgres():
    require_postgres()


def same_both_ways(tmp_path, caplog, make_log, ops) -> None:
    """``make_log(app, ops)`` into a fresh schema: the SQL path takes it, with the rows the
    Python path writes."""
    with postgres_store(tmp_path) as url:
        app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("sql"))
        store = view_store(url)
        caplog.clear()
        try:
            make_log(app, ops)
            in_sql, in_python = both_ways(app, store, caplog)
            assert in_sql == in_python
            assert TAKEN in caplog.text and FALLBACK not in caplog.text
        finally:
            store.close()
            app.close()


SLOW = settings(deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_random_logs_give_the_same_rows_both_ways(tmp_path, caplog):
    caplog.set_level(logging.INFO, "projections.sql_rebuild")

    @settings(SLOW, max_examples=6)
    @given(ops=operations)
    def run(ops):
        same_both_ways(tmp_path, caplog, play, ops)

    run()


def test_paper_trading_gives_the_same_rows_both_ways(postgres_url, caplog):
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series

    caplog.set_level(logging.INFO, "projections.sql_rebuild")
    candles = load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))
    world, (_, third, _) = busy_world(postgres_url, candles)
    store = view_store(postgres_url)
    try:
        with world.runner.lock:
            world.trading.pause_bot(third, actor="u2")
        in_sql, in_python = both_ways(world.trading, store, caplog)
        assert in_sql == in_python
        assert in_sql["paper_book_orders"] and in_sql["paper_book_assets"]
        assert in_sql["balance_open_orders"] and in_sql["balances"]
        assert TAKEN in caplog.text and FALLBACK not in caplog.text
        # And beside every other projection, swapped in together.
        everything = list(PROJECTIONS.values())
        assert both_ways(world.trading, store, caplog, everything)[0] == dump(store)
    finally:
        store.close()
        world.trading.close()


# Orders of a bot's deals, in any order of events: filled in parts (28-digit amounts) or
# whole, by fills or observed trades; cancelled, lost, expired, rejected; deals that finish
# with orders still open, orders filled or ended after their deal finished.
actions = st.lists(st.one_of(
    st.tuples(st.just("deal")),
    st.tuples(st.just("order"), st.integers(1, 5_000), st.integers(100, 90_000),
              st.sampled_from(["buy", "sell"]), st.booleans()),
    st.tuples(st.just("fill"), st.integers(0, 20), st.booleans(), st.booleans()),
    st.tuples(st.just("end"), st.integers(0, 20),
              st.sampled_from(["cancel", "lose", "expire", "reject"])),
), min_size=1, max_size=40)


def trade(app, ops: list[tuple]) -> None:
    from domain.errors import DomainError
    from domain.orders import Order, OrderSide, OrderType

    account = app.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    bot_id = app.create_bot(owner_id="u1", name="b", config=BOT,
                            exchange_account_id=str(account))
    app.start_bot(bot_id, actor="u1")
    bot, orders = app.repository.get(bot_id), []
    for op in ops:
        cause = app.cause("engine")
        try:
            if op[0] == "deal":
                if bot.open_deal_id is None:
                    bot.start_deal(cause, app.ids.new_id())
                else:
                    bot.finish_deal(cause, bot.open_deal_id)
                app.save_all(bot)
            elif op[0] == "order":
                _, cents, price, side, in_deal = op
                price = Decimal(price) / 100
                orders.append(Order.submit(
                    app.ids.new_id(), cause, client_order_id=f"o{len(orders)}", owner_id="u1",
                    exchange_account_id=str(account), pair="BTC/USDT", side=OrderSide(side),
                    type=OrderType.LIMIT, amount=Decimal(cents) / 100 / price, price=price,
                    bot_id=bot_id, deal_id=bot.open_deal_id if in_deal else None))
                app.save_all(orders[-1])
            elif orders:
                order = orders[op[1] % len(orders)]
                if op[0] == "end":
                    getattr(order, op[2])(cause, *(() if op[2] == "expire" else ("why",)))
                elif op[3]:
                    left = order.amount - order.filled
                    order.observe_trade(cause, trade_id=f"t{order.version}", price=order.price,
                                        amount=left if op[2] else left / 3, fee=Decimal("0.01"),
                                        fee_currency="USDT", fee_quote=Decimal("0.01"),
                                        exchange_time_ms=None)
                else:
                    left = order.amount - order.filled
                    order.fill(cause, trade_id=f"t{order.version}", price=order.price,
                               amount=left if op[2] else left / 3, fee=left / 7000,
                               fee_currency="USDT")
                app.save_all(order)
        except DomainError:
            continue  # not a transition the order or bot allows: nothing recorded


def test_orders_and_deals_in_any_order_give_the_same_rows_both_ways(tmp_path, caplog):
    caplog.set_level(logging.INFO, "projections.sql_rebuild")

    @settings(SLOW, max_examples=25)
    @given(ops=actions)
    # A deal finishing with its order open; the order then cancelled, or filled in parts.
    @example(ops=[("deal",), ("order", 100, 1000, "buy", True), ("deal",),
                  ("end", 0, "cancel")])
    @example(ops=[("deal",), ("order", 100, 1000, "sell", True), ("deal",),
                  ("fill", 0, False, False), ("fill", 0, True, False), ("deal",)])
    def run(ops):
        same_both_ways(tmp_path, caplog, trade, ops)

    run()


def test_a_day_of_trading_gives_the_same_rows_both_ways(tmp_path, caplog):
    """Manual orders filled in part and cancelled, a live account's observed balance."""
    from tests.projection_stubs import a_day_of_trading

    caplog.set_level(logging.INFO, "projections.sql_rebuild")
    same_both_ways(tmp_path, caplog, lambda app, _: a_day_of_trading(app), None)


@contextmanager
def an_account(postgres_url: str, caplog, ids: str):
    """A log with one paper account (the app, its view store, the account's id)."""
    caplog.set_level(logging.INFO, "projections.sql_rebuild")
    app = open_trading(postgres_url, clock=SteppingClock(T0), ids=SequentialIds(ids))
    store = view_store(postgres_url)
    try:
        yield app, store, app.open_account(owner_id="u1", exchange="paper",
                                           quote_asset="USDT")
    finally:
        store.close()
        app.close()


def test_a_decimal_in_exponent_form_is_rebuilt_in_python(postgres_url, caplog):
    with an_account(postgres_url, caplog, "exp") as (app, store, account):
        app.deposit(account, "USDT", Decimal("1E+2"), actor="u1")
        app.deposit(account, "USDT", Decimal("0.5"), actor="u1")
        in_sql, in_python = both_ways(app, store, caplog)
        assert FALLBACK in caplog.text
        assert in_sql == in_python
        assert in_sql["paper_book_deposits"] == [(str(account), "USDT", "100.5")]


def test_unset_builds_nothing_in_sql_and_one_builds_paper_book(postgres_url, caplog,
                                                                monkeypatch):
    """The SQL costs the database more processor time than the Python it saves: only asked
    for (``TRADETAPE_SQL_REBUILD=1``) is ``paper_book`` built so; the rows are the same."""
    with an_account(postgres_url, caplog, "dflt") as (app, store, account):
        app.deposit(account, "USDT", Decimal("2.5"), actor="u1")
        dumps = []
        for value in (None, "1"):
            if value is None:
                monkeypatch.delenv(sql_rebuild.SETTING, raising=False)
            else:
                monkeypatch.setenv(sql_rebuild.SETTING, value)
            caplog.clear()
            rebuild(app, store, BOOK)
            dumps.append(dump(store, BOOK))
            assert (TAKEN in caplog.text) == (value == "1")
        assert dumps[0] == dumps[1]
        assert dumps[0]["paper_book_deposits"] == [(str(account), "USDT", "2.5")]


# --- the rounding ---------------------------------------------------------------------------

digits = st.integers(min_value=-(10**30), max_value=10**30)
# As the SQL reads them: a stored Decimal with a positive exponent (``1E+2``) is refused
# before any sum (``test_a_decimal_in_exponent_form_is_rebuilt_in_python``).
numbers = st.builds(lambda coefficient, scale: Decimal(coefficient).scaleb(-scale),
                    digits, st.integers(0, 30)).filter(lambda d: d.as_tuple().exponent <= 0)


@pytest.fixture(scope="module")
def rounding():
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    conn = psycopg.connect(**_connect_kwargs(parse_database_url(POSTGRES_URL).env),
                           autocommit=True)
    conn.execute(sql_rebuild.FUNCTIONS)
    yield conn
    conn.close()


def in_sql(conn, query: str, params: tuple) -> Decimal | None:
    """The query's one value, or None when PostgreSQL refused to round it."""
    import psycopg

    try:
        (text,) = conn.execute(query, params).fetchone()
    except psycopg.errors.RaiseException:
        return None
    return Decimal(text)


def same(got: Decimal | None, want: Decimal | None) -> bool:
    """The same value to the same scale; or both refused. (A zero's sign aside: numeric has
    no -0, and the book only adds products to sums that start at +0, where it is lost.)"""
    if got is None or want is None:
        return got is want
    return got == want and got.as_tuple().exponent == want.as_tuple().exponent


def expected(steps: list[Decimal]) -> Decimal | None:
    """The last of Python's ``steps``; None when one needs an exponent (more than 28
    digits before the point), which the SQL refuses."""
    return None if any(step.as_tuple().exponent > 0 for step in steps) else steps[-1]


@settings(max_examples=300, deadline=None)
@given(terms=st.lists(numbers, min_size=1, max_size=8), factor=numbers)
def test_sums_and_products_round_as_python_does(rounding, terms, factor):
    steps, total = [], Decimal(0)
    for term in terms:
        total += term
        steps.append(total)
    summed = in_sql(rounding, "SELECT pg_temp.sum28(x ORDER BY i)::text FROM "
                    "unnest(%s::numeric[]) WITH ORDINALITY AS t(x, i)",
                    ([str(t) for t in terms],))
    assert same(summed, expected(steps))
    product = in_sql(rounding, "SELECT pg_temp.r28(%s::numeric * %s::numeric)::text",
                     (str(terms[0]), str(factor)))
    assert same(product, expected([terms[0] * factor]))


@pytest.mark.parametrize("text", [
    "1234567890123456789012345678.5",  # to ...678 (even), not up
    "1234567890123456789012345677.5",  # to ...678 (even), up
    "-1234567890123456789012345677.5",
    "0.12345678901234567890123456785",
    "9999999999999999999999999999.5",  # carries into a 29th digit
])
def test_ties_round_to_the_even_neighbour(rounding, text):
    got = in_sql(rounding, "SELECT pg_temp.r28(%s::numeric)::text", (text,))
    assert same(got, expected([+Decimal(text)]))
