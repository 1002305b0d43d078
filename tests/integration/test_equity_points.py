"""Equity points of an owner with several bots: the owner's latest point holds every open
deal of every bot it owns at the pair's mark, however the batches fell (the sorted deals
of an owner are kept between fills, until a deal opens or ends)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from projections.equity import EQ_POINTS, Equity
from projections.runner import Projector
from projections.store import SQLiteViewStore
from projections.tables import Changes
from tests.integration.conftest import T0
from tests.integration.test_projection_properties import levels, with_exits
from tests.integration.test_unrealized_read import Log, _first_batch, _id
from tests.projection_stubs import CONFIG, backtest, candle_rows, view_store

# Price steps of up to 2% (``levels``): a run that ends low keeps its deal open.
runs = st.lists(st.lists(st.integers(-20, 20), min_size=4, max_size=24), min_size=2,
                max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=runs, batch=st.integers(1, 40), exits=st.sampled_from(["plain", "steps"]))
def test_an_owners_latest_point_marks_every_open_deal_of_its_bots(runs, batch, exits):
    app = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("eq"))
    store = SQLiteViewStore(None)
    try:
        start = 1_700_000_000_000
        for n, steps in enumerate(runs):  # one owner ("backtest"), a bot per run
            backtest(app, candle_rows(levels(steps), start_ms=start), f"r{n}",
                     with_exits(CONFIG, exits))
            start += 60_000 * (len(steps) + 5)
        Projector(app, store, [Equity()], batch_size=batch).catch_up()
        marks = {m["pair"]: m["price"] for m in store.select(Equity.marks_table)}
        # units × mark − cost − buy fees of each open deal, plus what its take profit
        # steps sold net of their fees, summed in deal id order
        expected = Decimal(0)
        for deal in store.select(Equity.deals_table, order="deal_id"):
            if deal["pair"] in marks:
                expected += (deal["units"] * marks[deal["pair"]] - deal["cost"]
                             - deal["buy_fees"] + deal["proceeds"] - deal["sell_fees"])
        realized = sum((b["realized_pnl"] for b in store.select(Equity.bots_table)),
                       Decimal(0))
        points = store.select(Equity.tables[-1], "scope = 'owner' AND scope_id = ?",
                              ("backtest",), order="minute")
        assert len({b["bot_id"] for b in store.select(Equity.bots_table)}) == len(runs)
        assert (points[-1]["unrealized_pnl"], points[-1]["realized_pnl"]) == (
            expected, realized)
        assert points[-1]["equity"] == expected + realized
    finally:
        store.close()
        app.close()


def test_a_take_profit_steps_sale_counts_in_the_curve_as_pnl_counts_it(
        persistent_store_url, trading):
    """The owner's latest point is the portfolio's figure worked out by hand in
    test_unrealized_read: a step's proceeds count until the deal closes (the curve used to
    dip by what a step sold: B1's 1 unit of 2 sold at 12 read as 12 − 20 − 0.02 = −8.02)."""
    trading(persistent_store_url)
    store = view_store(persistent_store_url)
    try:
        store.register(Equity.name, "trading", Equity.tables, Equity.schema())
        _write_batch(store, Equity(), _first_batch(Log()))
        alice = store.select(Equity.tables[-1], "scope = 'owner' AND scope_id = ?",
                             ("alice",), order="minute")
        # A1: 1 × 95 − 95 − 0.095; B1: 1 × 12 − 20 − 0.02 + (12 − 0.012)
        assert (alice[-1]["unrealized_pnl"], alice[-1]["equity"]) == (
            Decimal("3.873"), Decimal("3.873"))
        b_bot = store.select(Equity.tables[-1], "scope = 'bot' AND scope_id = ?",
                             (_id("B"),), order="minute")
        assert b_bot[-1]["unrealized_pnl"] == Decimal("3.968")  # at the step's own minute
    finally:
        store.close()


def test_points_of_an_owner_id_holding_a_nul_read_back_as_that_id_after_a_restart(
        persistent_store_url, trading):
    """An owner id holding a NUL and ␀ (stored before ids were checked): its points, and
    its bot's, are written escaped like any view text (equity makes its new points' values
    itself) and read back as the owner's own id, by the reader and by a restarted
    projection, which carries the curve on."""
    trading(persistent_store_url)
    store = view_store(persistent_store_url)
    owner, log = "a\x00l\u2400ice", Log()
    try:
        store.register(Equity.name, "trading", Equity.tables, Equity.schema())
        bot = {"_type_": "uuid_hex", "_data_": UUID(_id("A")).hex}
        _write_batch(store, Equity(), [
            log.fact("Bot.Created", _id("A"), owner_id=owner, name="A",
                     config={"_data_": {"pair": "BTC/USDT"}}),
            log.fact("Deal.Opened", _id("A1"), owner_id=owner, pair="BTC/USDT", bot_id=bot),
            log.bought("A1", "100", "1", "0.1")])
        restarted = Equity()
        restarted.load(store)
        _write_batch(store, restarted, [log.bought("A1", "90", "1", "0.09", safety=1)])
        points = store.select(EQ_POINTS, order="minute, scope")
        # 1 × 100 − 100 − 0.1, then 2 × 90 − 190 − 0.19: the bot's and its owner's
        assert [(p["scope"], p["scope_id"], p["owner_id"], p["unrealized_pnl"])
                for p in points] == [
            ("bot", _id("A"), owner, Decimal("-0.1")), ("owner", owner, owner, Decimal("-0.1")),
            ("bot", _id("A"), owner, Decimal("-10.19")),
            ("owner", owner, owner, Decimal("-10.19"))]
        stored = store.query(f"SELECT DISTINCT owner_id FROM {store.q(EQ_POINTS.name)}")
        assert [tuple(row) for row in stored] == [("a\u24000000l\u24002400ice",)]
    finally:
        store.close()


def test_a_restarted_projection_rewrites_the_minutes_its_scopes_already_hold(
        persistent_store_url, trading, tmp_path):
    """Facts whose clocks went back to minutes three bots and both owners already have
    points at, after a restart: the restarted projection finds each scope's latest minute
    (``equity_latest``, written with the points) and rewrites those points, so its
    table ends as that of a projection that never stopped (no duplicate key, no point
    lost)."""
    trading(persistent_store_url)
    store, kept = view_store(persistent_store_url), view_store(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        for target in (store, kept):
            target.register(Equity.name, "trading", Equity.tables, Equity.schema())
        first = _first_batch(Log())
        log = Log()
        late = []
        for position, deal, price in ((5, "A1", "80"), (8, "B1", "11"), (11, "C2", "96")):
            log.position = position  # back to the minute of the deal's bot's earlier point
            late.append(log.bought(deal, price, "0.1", "0.01", safety=2))
        log.position = 30
        late.append(log.bought("A1", "85", "0.1", "0.01", safety=3))  # and forward again
        never_stopped = Equity()
        _write_batch(kept, never_stopped, first)
        _write_batch(kept, never_stopped, late)
        _write_batch(store, Equity(), first)
        held = {(p["scope"], p["scope_id"], p["minute"]) for p in store.select(EQ_POINTS)}
        restarted = Equity()
        restarted.load(store)
        _write_batch(store, restarted, late)
        order = "scope, scope_id, minute"
        assert store.select(EQ_POINTS, order=order) == kept.select(EQ_POINTS, order=order)
        added = {(p["scope"], p["scope_id"], p["minute"]) for p in store.select(EQ_POINTS)}
        assert held < added  # none lost; the forward fact's are new
        assert ("bot", _id("A"), "2026-12-01T00:31:00+00:00") in added - held
    finally:
        store.close()
        kept.close()


def _write_batch(store, equity: Equity, facts) -> None:
    """``facts`` applied to ``equity`` as one batch, written as the runner writes it."""
    out = Changes(Equity.tables)
    for fact in facts:
        handler = equity.route(fact.kind)
        if handler is not None:
            handler(fact, out)
    with store.transaction() as cur:
        equity.end_batch(out)
        store.write(cur, out.freeze())
