"""Properties of the read models, for random markets, bots and account activity, in memory,
on SQLite and on PostgreSQL:

- views kept up to date batch by batch, however the batches fall, equal a full rebuild row
  for row;
- a runner stopped at a random event (abandoned, or killed in the middle of a commit) and
  started again ends with the same views as one that never stopped;
- the realized P/L the pnl view shows is the sum over the Deal aggregates rebuilt from the
  events;
- a rebuild that decodes every event through the library's mapper (``facts.FAST`` off)
  writes the same rows as the fast decoding;
- the front end counts each bot's deals by how they ended, as the Deal aggregates say:
  closed (sold) or cancelled (never bought, e.g. a base order the balance could not pay).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from adapters.marketdata.csv_candles import candles_from_rows
from application.bootstrap import open_trading, run_backtest_on
from application.settings import _connect_kwargs, parse_database_url
from domain.dca import DcaConfig, TakeProfitStep
from domain.deals import Deal, DealStatus
from projections import facts
from projections.frontend import FE_BOTS, FE_DEALS
from projections.pnl import pnl_report
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import Projector
from projections.store import PostgresViewStore, SQLiteViewStore
from tests.conftest import POSTGRES_URL, require_postgres
from tests.integration.conftest import T0
from tests.projection_stubs import backtest, candle_rows, dump, view_store

ALL = list(PROJECTIONS.values())


class PowerCut(Exception):
    """Raised by a store in the middle of a commit, after some of its tables were written."""


def crashing_store(url: str, after_writes: int):
    """The views of ``url``, through a store that fails its ``after_writes``-th table write
    (the transaction is rolled back, as when the process dies there) until disarmed."""
    database = parse_database_url(url)
    base = PostgresViewStore if database.kind == "postgres" else SQLiteViewStore
    arg = database.env if database.kind == "postgres" else database.sqlite_path
    count = [0]

    class Crashing(base):  # type: ignore[misc, valid-type]
        def write(self, cur, changes, suffix=""):
            super().write(cur, changes, suffix)
            count[0] += 1
            if count[0] == after_writes:
                raise PowerCut("the power went out in the middle of a commit")

        def clone(self):
            return Crashing(arg)

        def disarm(self) -> None:
            count[0] = -(10**9)

    return Crashing(arg)


# --- what happens in the market and on the accounts -----------------------------------------

moves = st.lists(st.integers(min_value=-30, max_value=30), min_size=3, max_size=40)
configs = st.builds(
    lambda base, safety, count, deviation, tp, sl: DcaConfig(
        pair="BTC/USDT", base_order_quote=Decimal(base), safety_order_quote=Decimal(safety),
        max_safety_orders=count, price_deviation_pct=Decimal(deviation) / 10,
        safety_volume_scale=Decimal("1.5"), safety_step_scale=Decimal("1.2"),
        take_profit_pct=Decimal(tp) / 10, stop_loss_pct=None if sl is None else Decimal(sl)),
    st.integers(20, 200), st.integers(10, 100), st.integers(0, 4), st.integers(3, 25),
    st.integers(3, 25), st.none() | st.integers(3, 12))


def with_exits(config: DcaConfig, exits: str) -> DcaConfig:
    """The plain configuration, or with issue 12's take profit steps and break-even, or a
    trailing stop: their events (Deal.StepSold, ...) go through the views too."""
    tp = config.take_profit_pct
    if exits == "steps":
        return replace(config, take_profit_steps=(TakeProfitStep(tp, Decimal(60)),
                                                  TakeProfitStep(tp * 2, Decimal(40))),
                       stop_loss_to_breakeven=True)
    if exits == "trailing_stop":
        return replace(config, stop_loss_pct=config.stop_loss_pct or Decimal(2),
                       trailing_stop_loss=True)
    return config


configs = st.builds(with_exits, configs, st.sampled_from(["plain", "steps", "trailing_stop"]))
operations = st.lists(
    st.one_of(
        # A balance (in USDT) of None: unlimited; a small one refuses base orders.
        st.tuples(st.just("backtest"), moves, configs, st.booleans(),
                  st.none() | st.integers(10, 400)),
        st.tuples(st.just("deposit"), st.integers(1, 10_000), st.integers(0, 3)),
    ), min_size=1, max_size=4)


def levels(steps: list[int]) -> list[Decimal]:
    level, out = Decimal(1), [Decimal(1)]
    for step in steps:
        level = level * (1 + Decimal(step) / 1000)
        out.append(level)
    return out


def play(app: Any, ops: list[tuple]) -> None:
    start = 1_700_000_000_000
    for n, op in enumerate(ops):
        if op[0] == "backtest":
            _, steps, config, listed, balance = op
            rows = candle_rows(levels(steps), start_ms=start)
            if balance is None:
                result = backtest(app, rows, f"p{n}", config)
            else:
                result = run_backtest_on(candles_from_rows(rows), config,
                                         fee_rate=Decimal("0.001"), balance=Decimal(balance),
                                         store_url="memory", seed=f"p{n}", trading=app)
            start += 60_000 * (len(steps) + 5)
            if listed:
                app.set_leaderboard_opt_in(result.bot_id, True, actor="backtest")
        else:
            _, amount, withdrawals = op
            account = app.open_account(owner_id=f"owner-{n}", exchange="binance",
                                       quote_asset="USDT")
            app.deposit(account, "USDT", Decimal(amount) / 100)
            for _ in range(withdrawals):
                app.withdraw(account, "USDT", Decimal(amount) / 1000)


# --- one store per example ------------------------------------------------------------------


@contextmanager
def memory_store(_: Path) -> Iterator[str]:
    yield "memory"


@contextmanager
def sqlite_store(base: Path) -> Iterator[str]:
    folder = base / uuid.uuid4().hex[:12]
    folder.mkdir()
    yield f"sqlite:///{folder / 'events.sqlite'}"


@contextmanager
def postgres_store(_: Path) -> Iterator[str]:
    import psycopg

    schema = f"p_{uuid.uuid4().hex[:16]}"
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:  # a failing example (hypothesis shrinks through many) left its schema behind
        with psycopg.connect(**_connect_kwargs(parse_database_url(POSTGRES_URL).env),
                             autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


BACKENDS = {"memory": (memory_store, 20), "sqlite": (sqlite_store, 20),
            "postgres": (postgres_store, 6)}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path_factory):
    if request.param == "postgres":
        require_postgres()
    make, examples = BACKENDS[request.param]
    return make, examples, tmp_path_factory.mktemp("properties")


def check(backend, body) -> None:
    """Run ``body(url)`` for each example, each on a fresh store of the backend."""
    make, examples, base = backend

    @settings(max_examples=examples, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(ops=operations, data=st.data())
    def run(ops, data):
        with make(base) as url:
            app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("props"))
            try:
                play(app, ops)
                body(url, app, data)
            finally:
                app.close()

    run()


def test_views_updated_in_any_batches_equal_a_rebuild(backend):
    def body(url, app, data):
        store = view_store(url)
        try:
            head = app.recorder.max_notification_id()
            for cut in sorted(data.draw(st.lists(st.integers(1, head), max_size=3))):
                size = data.draw(st.integers(1, 60), label="batch size")
                # a follower far behind takes batches of up to ``most`` events
                most = data.draw(st.none() | st.integers(1, 300), label="max batch")
                Projector(app, store, [cls() for cls in ALL], batch_size=size,
                          max_batch=most).catch_up(until=cut)
            Projector(app, store, [cls() for cls in ALL], batch_size=17).catch_up()
            incremental = dump(store)
            rebuild(app, store, ALL, batch_size=data.draw(st.integers(5, 500)))
            assert dump(store) == incremental
        finally:
            store.close()

    check(backend, body)


def test_a_rebuild_decoding_through_the_library_writes_the_same_rows(backend):
    def body(url, app, data):
        store = view_store(url)
        size = data.draw(st.integers(5, 500), label="batch size")
        try:
            rebuild(app, store, ALL, batch_size=size)
            fast = dump(store)
            facts.FAST = False
            try:
                rebuild(app, store, ALL, batch_size=size)
            finally:
                facts.FAST = True
            assert dump(store) == fast
        finally:
            store.close()

    check(backend, body)


def test_a_runner_killed_mid_commit_resumes_to_the_same_views(backend):
    cuts = []

    def body(url, app, data):
        size = data.draw(st.integers(1, 40), label="batch size")
        after = data.draw(st.integers(1, 12), label="table writes before the cut")
        store = crashing_store(url, after)  # fails once, then works
        try:
            try:
                Projector(app, store, [cls() for cls in ALL], batch_size=size).catch_up()
                event("the log was short: no cut")
            except PowerCut:
                event("cut in the middle of a commit")
                cuts.append(size)
            store.disarm()
            # A new runner: its state comes from the tables alone.
            Projector(app, store, [cls() for cls in ALL], batch_size=size).catch_up()
            resumed = dump(store)
            rebuild(app, store, ALL)
            assert dump(store) == resumed
        finally:
            store.close()

    check(backend, body)
    assert cuts, "no example was cut in the middle of a commit"


def test_realized_pnl_is_the_sum_over_the_deals_rebuilt_from_events(backend):
    def body(url, app, data):
        store = view_store(url)
        try:
            Projector(app, store, [PROJECTIONS["pnl"]()], batch_size=50).catch_up()
            deals = [app.repository.get(uuid.UUID(deal_id)) for (deal_id,) in store.query(
                f"SELECT deal_id FROM {store.q('pnl_deals')}")]
            closed = [d for d in deals if isinstance(d, Deal) and d.status is DealStatus.CLOSED]
            report = pnl_report(store)
            # Running sums round at 28 digits, and the view adds per bot in the order deals
            # closed: another order may differ in the last digits, never by more.
            with localcontext() as context:
                context.prec = 60
                exact = sum((d.realized_pnl for d in closed), Decimal(0))
            assert abs(report["realized_pnl"] - exact) <= Decimal("1e-18")
            assert report["deals_closed"] == len(closed)
        finally:
            store.close()

    check(backend, body)


def test_front_end_counts_each_bots_deals_by_how_they_ended(backend):
    def body(url, app, data):
        store = view_store(url)
        try:
            size = data.draw(st.integers(1, 60), label="batch size")
            Projector(app, store, [PROJECTIONS["frontend"](), PROJECTIONS["pnl"]()],
                      batch_size=size).catch_up()
            ended: dict[str, list[DealStatus]] = {}
            for row in store.select(FE_DEALS):
                deal = app.repository.get(uuid.UUID(row["deal_id"]))
                assert isinstance(deal, Deal) and row["status"] == deal.status.value
                ended.setdefault(row["bot_id"], []).append(deal.status)
            for bot in store.select(FE_BOTS):
                statuses = ended.get(bot["bot_id"], [])
                assert bot["deals_opened"] == len(statuses)
                assert bot["deals_closed"] == statuses.count(DealStatus.CLOSED)
                assert bot["deals_cancelled"] == statuses.count(DealStatus.CANCELLED)
                if bot["deals_cancelled"]:
                    event("a bot had a deal cancelled")
            report = pnl_report(store)
            assert report["deals_closed"] == sum(b["deals_closed"] for b in store.select(FE_BOTS))
        finally:
            store.close()

    check(backend, body)


LEDGERS = [PROJECTIONS[name] for name in ("equity", "leaderboard", "pnl")]  # pnl leads


def test_ledgers_run_together_share_books_and_write_what_each_writes_alone(backend):
    def body(url, app, data):
        size = data.draw(st.integers(1, 60), label="batch size")
        alone: dict[str, list[tuple]] = {}
        for cls in LEDGERS:  # each alone, in a store of its own: books of its own
            own = SQLiteViewStore(None)
            try:
                Projector(app, own, [cls()], batch_size=size).catch_up()
                alone.update(dump(own, [cls]))
            finally:
                own.close()
        store = view_store(url)
        try:
            head = app.recorder.max_notification_id()
            for cut in sorted(data.draw(st.lists(st.integers(1, head), max_size=2))):
                # Each runner loads the books from the three projections' tables.
                Projector(app, store, [cls() for cls in LEDGERS], batch_size=size).catch_up(
                    until=cut)
            projector = Projector(app, store, [cls() for cls in LEDGERS], batch_size=size)
            projector.start()
            assert projector.shares_books()
            leader = projector.tracked[0].projection
            assert (leader.name, [f.name for f in leader.followers]) == (
                "pnl", ["equity", "leaderboard"])
            projector.catch_up()
            assert dump(store, LEDGERS) == alone
            rebuild(app, store, LEDGERS, batch_size=size, split=False)
            assert dump(store, LEDGERS) == alone
        finally:
            store.close()

    check(backend, body)
