"""The event-sourced engine against the independent reference implementation of the rules
(tests/reference_backtest.py): counts exactly, money to within 0.000001 quote."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.marketdata.csv_candles import candles_from_rows, load_candles
from adapters.marketdata.shipped import shipped_series
from adapters.marketdata.walk import write_walk_csv
from api.cli import main
from application.bootstrap import run_backtest_on
from domain.dca import DcaConfig
from tests.reference_backtest import run_reference
from tests.strategies import dca_configs

TOLERANCE = Decimal("0.000001")
COUNTS = ("candles", "deals_closed", "deals_open", "take_profits", "stop_losses",
          "max_safety_orders_used", "orders_rejected")
MONEY = ("realized_pnl", "unrealized_pnl", "fees_closed_deals", "max_drawdown",
         "max_capital_committed")
DEAL_FIELDS = ("opened", "closed", "reason", "safety_orders")
DEAL_MONEY = ("entry", "avg_entry", "exit", "pnl")

BTC_BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 5, "price_deviation_pct": "0.8", "safety_volume_scale": "1.6",
    "safety_step_scale": "1.3", "take_profit_pct": "1.2",
}


def assert_matches_reference(summary: dict, deals: list[dict], ref: dict) -> None:
    for key in COUNTS:
        assert int(summary[key]) == ref[key], key
    for key in MONEY:
        assert abs(Decimal(str(summary[key])) - ref[key]) <= TOLERANCE, (key, summary[key],
                                                                           ref[key])
    assert (summary["bot_error"] is not None) == ref["bot_stopped"]
    for key in ("avg_deal_seconds", "longest_deal_seconds"):
        assert summary[key] == ref[key], key
    assert abs(Decimal(str(summary["market_change"])) - ref["market_change"]) <= TOLERANCE
    if ref["win_rate"] is None:
        assert summary["win_rate"] is None
    else:
        assert abs(Decimal(str(summary["win_rate"])) - ref["win_rate"]) <= TOLERANCE
    assert len(deals) == len(ref["deals"])
    for ours, theirs in zip(deals, ref["deals"], strict=True):
        for key in DEAL_FIELDS:
            assert str(ours[key]) == str(theirs[key]), (key, ours, theirs)
        for key in DEAL_MONEY:
            assert abs(Decimal(str(ours[key])) - theirs[key]) <= TOLERANCE, (key, ours, theirs)


def assert_open_deal_matches_reference(ours: dict | None, theirs: dict | None) -> None:
    assert (ours is None) == (theirs is None), (ours, theirs)
    if ours is None:
        return
    assert ours["opened"] == theirs["opened"]
    assert ours["closed"] is None and ours["reason"] is None
    assert ours["safety_orders"] == theirs["safety_orders"]
    for key in ("entry", "avg_entry", "units"):
        assert abs(Decimal(str(ours[key])) - theirs[key]) <= TOLERANCE, (key, ours, theirs)


def reference_on_file(path: Path, config: dict, fee: str = "0.001", balance=None) -> dict:
    candles = load_candles(path)
    rows = [(int(candles.timestamps[i]), *candles.exact(i)) for i in range(len(candles))]
    return run_reference(config, rows, Decimal(fee), None if balance is None else Decimal(balance))


def cli_backtest(tmp_path: Path, capsys, candles: Path, config: dict, *extra: str) -> dict:
    config_file = tmp_path / "bot.json"
    config_file.write_text(json.dumps(config))
    code = main(["backtest", "--candles", str(candles), "--config", str(config_file),
                 "--json", "--deals", "--no-progress", *extra])
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out)


@pytest.mark.parametrize(
    ("series", "config"),
    [
        ("binance_BTC_USDT-1m-2025-11.csv", BTC_BOT),
        ("binance_BTC_USDT-1m-2025-11.csv", {**BTC_BOT, "stop_loss_pct": "4"}),
        ("freqtrade_ETH_BTC-5m.csv", {**BTC_BOT, "pair": "ETH/BTC", "base_order_quote": "1",
                                      "safety_order_quote": "1", "take_profit_pct": "2"}),
        ("freqtrade_UNITTEST_BTC-1m.csv", {**BTC_BOT, "pair": "UNITTEST/BTC",
                                           "stop_loss_pct": "3", "max_safety_orders": 2}),
    ],
    ids=["btc-1m", "btc-1m-stop-loss", "eth-btc-5m", "unittest-1m-gaps"],
)
def test_backtest_on_shipped_real_candles_matches_reference(tmp_path, capsys, series, config):
    path = shipped_series(series)
    result = cli_backtest(tmp_path, capsys, path, config)
    assert result["deals_closed"] > 0
    ref = reference_on_file(path, config)
    assert_matches_reference(result, result["deals"], ref)
    assert_open_deal_matches_reference(result["open_deal"], ref["open_deal"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backtest_on_generated_walks_matches_reference(tmp_path, capsys, seed):
    path = tmp_path / f"walk{seed}.csv"
    write_walk_csv(path, 20_000, seed=seed, volatility="0.002")
    config = {**BTC_BOT, "stop_loss_pct": "6"} if seed == 2 else BTC_BOT
    result = cli_backtest(tmp_path, capsys, path, config)
    assert_matches_reference(result, result["deals"], reference_on_file(path, config))


def test_backtest_with_a_balance_rejects_what_it_cannot_cover_like_the_reference(
    tmp_path, capsys
):
    path = shipped_series("binance_BTC_USDT-1m-2025-11.csv")
    result = cli_backtest(tmp_path, capsys, path, BTC_BOT, "--balance", "400")
    assert result["orders_rejected"] > 0
    assert_matches_reference(result, result["deals"],
                             reference_on_file(path, BTC_BOT, balance="400"))


prices = st.decimals(min_value=Decimal("50"), max_value=Decimal("150"), places=2)


@st.composite
def walks(draw):
    n = draw(st.integers(min_value=1, max_value=60))
    rows, price, ts = [], draw(prices), 1_640_995_200_000
    for _ in range(n):
        step = draw(st.integers(min_value=-300, max_value=300))
        close = max(Decimal("1.00"), price + Decimal(step) / 100)
        open_ = price if draw(st.booleans()) else max(Decimal("1.00"), price + Decimal(
            draw(st.integers(min_value=-200, max_value=200))) / 100)
        high = max(open_, close) + Decimal(draw(st.integers(min_value=0, max_value=150))) / 100
        low = max(Decimal("0.50"), min(open_, close) - Decimal(
            draw(st.integers(min_value=0, max_value=150))) / 100)
        rows.append((ts, open_, high, low, close))
        price, ts = close, ts + 60_000
    return rows


configs = dca_configs()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=walks(), config=configs, balance=st.sampled_from([None, "150", "1000"]))
def test_engine_equals_reference_on_random_walks_and_configs(rows, config, balance):
    candles = candles_from_rows([(ts, str(o), str(h), str(lo), str(c))
                                 for ts, o, h, lo, c in rows])
    bal = None if balance is None else Decimal(balance)
    result = run_backtest_on(candles, DcaConfig.from_mapping(config), fee_rate=Decimal("0.001"),
                             balance=bal, store_url="memory", seed="prop", keep_deals=True,
                             keep_equity=True)
    ref = run_reference(config, rows, Decimal("0.001"), bal)
    assert_matches_reference(result.summary, result.deals, ref)
    assert_open_deal_matches_reference(result.open_deal, ref["open_deal"])
    # The plotted curve is the reference's equity at every close (floats, for the picture).
    expected = np.array([float(e) for e in ref["equity"]])
    assert np.allclose(result.equity, expected, rtol=1e-12, atol=1e-9)


# --- trailing take profit (issue 12) ---------------------------------------------------------

TRAILING_BOT = {**BTC_BOT, "trailing_take_profit_pct": "0.4"}


def assert_trailing_matches_reference(summary: dict, deals: list[dict], ref: dict) -> None:
    assert_matches_reference(summary, deals, ref)
    assert int(summary["trailing_take_profits"]) == ref["trailing_take_profits"]


@pytest.mark.parametrize(
    ("series", "config"),
    [
        ("binance_BTC_USDT-1m-2025-11.csv", TRAILING_BOT),
        ("binance_BTC_USDT-1m-2025-11.csv", {**TRAILING_BOT, "stop_loss_pct": "4",
                                             "trailing_take_profit_pct": "1.1"}),
        ("freqtrade_UNITTEST_BTC-1m.csv", {**TRAILING_BOT, "pair": "UNITTEST/BTC",
                                           "stop_loss_pct": "3", "max_safety_orders": 2}),
    ],
    ids=["btc-1m", "btc-1m-stop-loss", "unittest-1m-gaps"],
)
def test_trailing_take_profit_on_shipped_real_candles_matches_reference(
    tmp_path, capsys, series, config
):
    path = shipped_series(series)
    result = cli_backtest(tmp_path, capsys, path, config)
    ref = reference_on_file(path, config)
    assert ref["trailing_take_profits"] > 0  # the series exercises the rule
    assert_trailing_matches_reference(result, result["deals"], ref)
    assert_open_deal_matches_reference(result["open_deal"], ref["open_deal"])
    assert {d["reason"] for d in result["deals"]} <= {"trailing_take_profit", "stop_loss"}


@pytest.mark.parametrize("seed", [4, 5])
def test_trailing_take_profit_on_generated_walks_matches_reference(tmp_path, capsys, seed):
    path = tmp_path / f"walk{seed}.csv"
    write_walk_csv(path, 20_000, seed=seed, volatility="0.002")
    config = {**TRAILING_BOT, "stop_loss_pct": "6"} if seed == 5 else TRAILING_BOT
    result = cli_backtest(tmp_path, capsys, path, config)
    ref = reference_on_file(path, config)
    assert ref["trailing_take_profits"] > 0
    assert_trailing_matches_reference(result, result["deals"], ref)


@st.composite
def trailing_configs(draw):
    config = draw(configs)
    # 0 < d < take profit; at times close to it, where the exit falls below the TP price
    tp = Decimal(config["take_profit_pct"])
    fraction = draw(st.sampled_from(["0.01", "0.2", "0.5", "0.9", "0.99"]))
    return {**config, "trailing_take_profit_pct": str(tp * Decimal(fraction))}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=walks(), config=trailing_configs(), balance=st.sampled_from([None, "150", "1000"]))
def test_trailing_engine_equals_reference_on_random_walks_and_configs(rows, config, balance):
    candles = candles_from_rows([(ts, str(o), str(h), str(lo), str(c))
                                 for ts, o, h, lo, c in rows])
    bal = None if balance is None else Decimal(balance)
    result = run_backtest_on(candles, DcaConfig.from_mapping(config), fee_rate=Decimal("0.001"),
                             balance=bal, store_url="memory", seed="prop", keep_deals=True,
                             keep_equity=True)
    ref = run_reference(config, rows, Decimal("0.001"), bal)
    assert_trailing_matches_reference(result.summary, result.deals, ref)
    assert_open_deal_matches_reference(result.open_deal, ref["open_deal"])
    expected = np.array([float(e) for e in ref["equity"]])
    assert np.allclose(result.equity, expected, rtol=1e-12, atol=1e-9)
