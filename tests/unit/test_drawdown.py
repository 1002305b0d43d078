"""The drawdown over candles skipped between engine steps is worked out on floats only to
find the candidates: it must come out exactly as sampling every close in Decimal does."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.marketdata.csv_candles import candles_from_rows
from application.drawdown import DrawdownTracker

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("5"), places=8)
money = st.decimals(min_value=Decimal("-5000"), max_value=Decimal("5000"), places=6)


@st.composite
def scenarios(draw):
    closes = draw(st.lists(prices, min_size=2, max_size=60))
    rows = [(60_000 * i, c, c, c, c) for i, c in enumerate(closes)]
    cuts = sorted(draw(st.sets(st.integers(1, len(closes) - 1), max_size=6)))
    bounds = [0, *cuts, len(closes)]
    steps = []
    for start, end in pairwise(bounds):
        state = draw(st.none() | st.tuples(amounts, money.map(abs)))
        steps.append((start, end, draw(money), state))
    return rows, steps


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_skipping_gives_exactly_what_sampling_every_close_gives(scenario):
    rows, steps = scenario
    candles = candles_from_rows(rows)
    skipping, sampling = DrawdownTracker(candles), DrawdownTracker(candles)
    for start, end, realized, state in steps:
        skipping.sample(start, realized, state, candles.exact_close(start))
        skipping.skip(start + 1, end, realized, state)
        for i in range(start, end):
            sampling.sample(i, realized, state, candles.exact_close(i))
        assert (skipping.peak, skipping.max_drawdown) == (sampling.peak, sampling.max_drawdown)
