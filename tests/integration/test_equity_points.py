"""Equity points of an owner with several bots: the owner's latest point holds every open
deal of every bot it owns at the pair's mark, however the batches fell (the sorted deals
of an owner are kept between fills, until a deal opens or ends)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from projections.equity import Equity
from projections.runner import Projector
from projections.store import SQLiteViewStore
from tests.integration.conftest import T0
from tests.integration.test_projection_properties import levels
from tests.projection_stubs import CONFIG, backtest, candle_rows

# Price steps of up to 2% (``levels``): a run that ends low keeps its deal open.
runs = st.lists(st.lists(st.integers(-20, 20), min_size=4, max_size=24), min_size=2,
                max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=runs, batch=st.integers(1, 40))
def test_an_owners_latest_point_marks_every_open_deal_of_its_bots(runs, batch):
    app = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("eq"))
    store = SQLiteViewStore(None)
    try:
        start = 1_700_000_000_000
        for n, steps in enumerate(runs):  # one owner ("backtest"), a bot per run
            backtest(app, candle_rows(levels(steps), start_ms=start), f"r{n}", CONFIG)
            start += 60_000 * (len(steps) + 5)
        Projector(app, store, [Equity()], batch_size=batch).catch_up()
        marks = {m["pair"]: m["price"] for m in store.select(Equity.marks_table)}
        # units × mark − cost − buy fees of each open deal, summed in deal id order
        expected = Decimal(0)
        for deal in store.select(Equity.deals_table, order="deal_id"):
            if deal["pair"] in marks:
                expected += (deal["units"] * marks[deal["pair"]] - deal["cost"]
                             - deal["buy_fees"])
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
