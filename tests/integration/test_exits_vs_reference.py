"""Exits of a DCA deal (issue 12): take profit steps, break-even, trailing stop loss (with and
without activation) and their allowed combinations, the engine against the independent
reference (tests/reference_backtest.py) on real and generated candles."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.marketdata.csv_candles import candles_from_rows
from adapters.marketdata.shipped import shipped_series
from adapters.marketdata.walk import write_walk_csv
from application.bootstrap import run_backtest_on
from domain.dca import DcaConfig
from tests.integration.test_engine_vs_reference import (
    BTC_BOT,
    assert_matches_reference,
    assert_open_deal_matches_reference,
    cli_backtest,
    reference_on_file,
    walks,
)
from tests.reference_backtest import run_reference
from tests.strategies import dca_configs

TOLERANCE = Decimal("0.000001")
STEPS = [{"pct": "0.4", "volume_pct": "50"}, {"pct": "0.8", "volume_pct": "30"},
         {"pct": "1.2", "volume_pct": "20"}]
STEPPED = {k: v for k, v in BTC_BOT.items() if k != "take_profit_pct"} | {
    "take_profit_steps": STEPS}
TRAILING_STOP = {**BTC_BOT, "stop_loss_pct": "1.5", "trailing_stop_loss": True}


def assert_exits_match(summary: dict, deals: list[dict], open_deal, ref: dict) -> None:
    assert_matches_reference(summary, deals, ref)
    assert_open_deal_matches_reference(open_deal, ref["open_deal"])
    for key in ("take_profit_steps_filled", "trailing_stop_losses", "trailing_take_profits"):
        if key in summary:
            assert int(summary[key]) == ref[key], key
    for ours, theirs in zip(deals, ref["deals"], strict=True):
        if "sells" in ours:
            assert len(ours["sells"]) == len(theirs["sells"]), (ours, theirs)
            for a, b in zip(ours["sells"], theirs["sells"], strict=True):
                for key in ("price", "amount", "fee"):
                    assert abs(Decimal(str(a[key])) - b[key]) <= TOLERANCE, (key, a, b)


REAL = [
    ("steps", STEPPED),
    ("steps-breakeven", {**STEPPED, "stop_loss_to_breakeven": True}),
    ("steps-breakeven-stop", {**STEPPED, "stop_loss_to_breakeven": True, "stop_loss_pct": "4"}),
    ("trailing-stop", TRAILING_STOP),
    ("trailing-stop-activation", {**TRAILING_STOP, "stop_loss_activation_pct": "0.5"}),
    ("steps-trailing-stop", {**STEPPED, "stop_loss_pct": "1.5", "trailing_stop_loss": True,
                             "stop_loss_to_breakeven": True}),
    ("trailing-tp-trailing-stop", {**TRAILING_STOP, "trailing_take_profit_pct": "0.4",
                                   "stop_loss_activation_pct": "0.3"}),
]


@pytest.mark.parametrize("series", ["binance_BTC_USDT-1m-2025-11.csv",
                                    "freqtrade_UNITTEST_BTC-1m.csv"])
@pytest.mark.parametrize(("name", "config"), REAL, ids=[n for n, _ in REAL])
def test_exits_on_shipped_real_candles_match_reference(tmp_path, capsys, series, name, config):
    if series.startswith("freqtrade"):
        config = {**config, "pair": "UNITTEST/BTC", "max_safety_orders": 2}
    path = shipped_series(series)
    result = cli_backtest(tmp_path, capsys, path, config)
    ref = reference_on_file(path, config)
    assert ref["deals_closed"] + ref["take_profit_steps_filled"] > 0
    assert_exits_match(result, result["deals"], result["open_deal"], ref)


def test_the_real_series_exercise_every_exit():
    path = shipped_series("binance_BTC_USDT-1m-2025-11.csv")
    stepped = reference_on_file(path, {**STEPPED, "stop_loss_to_breakeven": True})
    assert {d["reason"] for d in stepped["deals"]} == {"take_profit_step", "stop_loss"}
    assert stepped["take_profit_steps_filled"] > stepped["take_profits"]
    trailing = reference_on_file(path, TRAILING_STOP)
    assert trailing["trailing_stop_losses"] > 0


@pytest.mark.parametrize("seed", [6, 7])
def test_exits_on_generated_walks_match_reference(tmp_path, capsys, seed):
    path = tmp_path / f"walk{seed}.csv"
    write_walk_csv(path, 20_000, seed=seed, volatility="0.002")
    for _, config in REAL:
        result = cli_backtest(tmp_path, capsys, path, config)
        assert_exits_match(result, result["deals"], result["open_deal"],
                           reference_on_file(path, config))


@st.composite
def steps(draw):
    n = draw(st.integers(min_value=1, max_value=4))
    pcts = sorted(draw(st.lists(st.sampled_from(["0.3", "0.5", "1", "1.5", "2.5", "4"]),
                                min_size=n, max_size=n, unique=True)), key=Decimal)
    cuts = sorted(draw(st.lists(st.integers(min_value=1, max_value=99), min_size=n - 1,
                                max_size=n - 1, unique=True)))
    volumes = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    return [{"pct": p, "volume_pct": str(v)} for p, v in zip(pcts, volumes, strict=True)]


@st.composite
def exit_configs(draw):
    config = draw(dca_configs())
    kind = draw(st.sampled_from(["steps", "trailing_tp", "plain"]))
    if kind == "steps":
        del config["take_profit_pct"]
        config["take_profit_steps"] = draw(steps())
        config["stop_loss_to_breakeven"] = draw(st.booleans())
    elif kind == "trailing_tp":
        tp = Decimal(config["take_profit_pct"])
        config["trailing_take_profit_pct"] = str(tp * Decimal(draw(st.sampled_from(
            ["0.2", "0.5", "0.9"]))))
    if config["stop_loss_pct"] is not None and draw(st.booleans()):
        config["trailing_stop_loss"] = True
        config["stop_loss_activation_pct"] = draw(st.sampled_from([None, "0", "0.4", "2"]))
    if kind == "plain" and not config.get("trailing_stop_loss"):
        config["stop_loss_pct"] = draw(st.sampled_from(["1.5", "5"]))
        config["trailing_stop_loss"] = True
    return config


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=walks(), config=exit_configs(), balance=st.sampled_from([None, "150", "1000"]),
       fee=st.sampled_from(["0", "0.001"]))
def test_exits_engine_equals_reference_on_random_walks_and_configs(rows, config, balance, fee):
    candles = candles_from_rows([(ts, str(o), str(h), str(lo), str(c))
                                 for ts, o, h, lo, c in rows])
    bal = None if balance is None else Decimal(balance)
    result = run_backtest_on(candles, DcaConfig.from_mapping(config), fee_rate=Decimal(fee),
                             balance=bal, store_url="memory", seed="prop", keep_deals=True,
                             keep_equity=True)
    ref = run_reference(config, rows, Decimal(fee), bal)
    assert_exits_match(result.summary, result.deals, result.open_deal, ref)
    expected = np.array([float(e) for e in ref["equity"]])
    assert np.allclose(result.equity, expected, rtol=1e-12, atol=1e-9)
