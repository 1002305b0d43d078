"""tests/reference_backtest.py, the DCA oracle: golden cases, hand cases, invariants."""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference_backtest import run_reference

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "dca_backtest_cases.json"
CASES = json.loads(GOLDEN.read_text())
TOLERANCE = Decimal("0.000001")
COUNTS = ("deals_closed", "deals_open", "take_profits", "stop_losses")

CONFIG = {  # the golden cases' bot: 100 base, safety orders 100/200/400 at 99/98/97, TP 1%
    "pair": "BTC/USDT",
    "base_order_quote": "100",
    "safety_order_quote": "100",
    "max_safety_orders": 3,
    "price_deviation_pct": "1",
    "safety_volume_scale": "2",
    "safety_step_scale": "1",
    "take_profit_pct": "1",
}
T0 = 1_640_995_200_000
MINUTE = 60_000


def candles(*rows: tuple[str, str, str, str]) -> list:
    """Minute candles from (open, high, low, close) strings."""
    return [(T0 + i * MINUTE, *(Decimal(v) for v in row)) for i, row in enumerate(rows)]


def close_to(actual: Decimal, expected: str | Decimal) -> bool:
    return abs(actual - Decimal(expected)) <= TOLERANCE


# --- golden cases --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden_case(case: dict) -> None:
    data = [(int(ts), *(Decimal(v) for v in ohlc)) for ts, *ohlc in case["candles"]]
    result = run_reference(case["config"], data, fee_rate=Decimal(case["fee_rate"]))

    for key, value in case["expected"].items():
        if key in COUNTS:
            assert result[key] == value, key
        else:
            assert close_to(result[key], value), (key, result[key], value)
    assert len(result["deals"]) == len(case["deals"])
    for got, want in zip(result["deals"], case["deals"], strict=True):
        assert got["opened"] == int(want["opened"])
        assert got["closed"] == int(want["closed"])
        assert got["reason"] == want["reason"]
        assert got["safety_orders"] == int(want["safety_orders"])
        for key in ("avg_entry", "exit", "pnl"):
            assert close_to(got[key], want[key]), (key, got[key], want[key])


# --- hand-computed cases -------------------------------------------------------------------


def test_balance_covering_base_and_first_safety_order_rejects_the_others() -> None:
    # 200.2 = 100 × 1.001 (base) + 100 × 1.001 (safety 1); safety 2 (200) and 3 (400) rejected.
    data = candles(
        ("100", "100", "100", "100"),  # deal opens at 100
        ("100", "100", "97.5", "98"),  # safety 1 fills at 99; no safety 2 to fill at 98
        ("98", "101", "98", "101"),  # take profit at avg × 1.01; next deal opens at 101
    )
    result = run_reference(CONFIG, data, balance=Decimal("200.2"))

    assert result["orders_rejected"] == 4  # safety 2 and 3 of each of the two deals
    assert result["max_capital_committed"] == Decimal("200.2")
    assert result["deals_closed"] == 1
    assert result["deals_open"] == 1
    (deal,) = result["deals"]
    assert deal["reason"] == "take_profit"
    assert deal["safety_orders"] == 1
    assert close_to(deal["avg_entry"], Decimal(200) / (1 + Decimal(100) / 99))
    assert close_to(deal["pnl"], "1.598")  # 202 − 200 − 0.1 − 0.1 − 0.202
    # Unlimited, the same data fills safety 2 at 98 as well before the take profit.
    unlimited = run_reference(CONFIG, data)
    assert unlimited["orders_rejected"] == 0
    assert [d["safety_orders"] for d in unlimited["deals"]] == [2]


def test_balance_exactly_covering_the_base_order() -> None:
    data = candles(("100", "100", "100", "100"), ("100", "100", "90", "90"))
    result = run_reference(CONFIG, data, balance=Decimal("100.1"))

    assert result["orders_rejected"] == 3  # every safety order
    assert result["deals_open"] == 1
    assert result["max_capital_committed"] == Decimal("100.1")
    assert result["unrealized_pnl"] == Decimal("-10.1")  # 1 unit × 90 − 100 − 0.1
    assert result["max_drawdown"] == Decimal("10.1")


def test_base_order_refused_means_no_deal_and_the_bot_stops() -> None:
    data = candles(
        ("100", "100", "100", "100"), ("100", "105", "95", "99"), ("99", "99", "98", "98")
    )
    result = run_reference(CONFIG, data, balance=Decimal("100.09"))

    assert result["orders_rejected"] == 1  # no retry at the next closes
    assert result["bot_stopped"] is True
    assert result["deals_open"] == 0
    assert result["deals_closed"] == 0
    assert result["max_capital_committed"] == 0
    assert result["unrealized_pnl"] == 0
    assert result["max_drawdown"] == 0
    assert result["win_rate"] is None


def test_max_capital_committed_unlimited() -> None:
    # (base 100 + safety 100 + 200 + 400) × 1.001, reached when the deal opens.
    data = candles(("100", "100", "100", "100"), ("97.5", "97.6", "97.4", "97.5"))
    assert run_reference(CONFIG, data)["max_capital_committed"] == Decimal("800.8")
    # base 10, two safety orders 20 and 30 (volume scale 1.5): 60 × 1.001 = 60.06, for each deal.
    config = {
        **CONFIG,
        "base_order_quote": "10",
        "safety_order_quote": "20",
        "max_safety_orders": 2,
        "safety_volume_scale": "1.5",
    }
    data = candles(
        ("100", "100", "100", "100"), ("100", "103", "98.5", "102"), ("102", "110", "102", "109")
    )
    result = run_reference(config, data)
    assert result["deals_closed"] == 2
    assert result["max_capital_committed"] == Decimal("60.06")


def test_gap_at_the_open_fills_the_safety_order_before_checking_the_stop_loss() -> None:
    # Stop loss 0.5%: 99.5 before any safety fill. The open 98.9 crosses safety 1 (99) and SL.
    config = {**CONFIG, "max_safety_orders": 1, "stop_loss_pct": "0.5"}
    data = candles(("100", "100", "100", "100"), ("98.9", "99", "98.8", "98.9"))
    (deal,) = run_reference(config, data)["deals"]
    assert deal["reason"] == "stop_loss"
    assert deal["safety_orders"] == 1  # bought at the open first, then stopped at the open
    assert deal["exit"] == Decimal("98.9")
    assert close_to(deal["cost"], Decimal(100) + Decimal(100) / 99 * Decimal("98.9"))


def test_safety_order_fills_before_a_stop_loss_at_the_same_price() -> None:
    # SL 1% of 100 = 99 = safety 1: the safety order fills, the SL moves down to avg × 0.99.
    config = {**CONFIG, "max_safety_orders": 1, "stop_loss_pct": "1"}
    data = candles(("100", "100", "100", "100"), ("100", "100", "98", "98"))
    (deal,) = run_reference(config, data)["deals"]
    avg = Decimal(200) / (1 + Decimal(100) / 99)
    assert deal["safety_orders"] == 1
    assert deal["reason"] == "stop_loss"
    assert close_to(deal["exit"], avg * Decimal("0.99"))


# --- invariants on random candle walks -----------------------------------------------------


@st.composite
def walks(draw: st.DrawFn) -> list:
    """Candles from bounded random moves in basis points (gaps at the open included)."""
    price = Decimal(100)
    rows = []
    for i in range(draw(st.integers(1, 40))):
        gap, body, wick_up, wick_down = draw(
            st.tuples(
                st.integers(-150, 150),
                st.integers(-400, 400),
                st.integers(0, 300),
                st.integers(0, 300),
            )
        )
        open_ = price * (1 + Decimal(gap) / 10_000)
        close = open_ * (1 + Decimal(body) / 10_000)
        high = max(open_, close) * (1 + Decimal(wick_up) / 10_000)
        low = min(open_, close) * (1 - Decimal(wick_down) / 10_000)
        rows.append((T0 + i * MINUTE, open_, high, low, close))
        price = close
    return rows


def decimals(low: str, high: str) -> st.SearchStrategy[str]:
    return st.decimals(Decimal(low), Decimal(high), places=2).map(str)


configs = st.fixed_dictionaries(
    {
        "pair": st.just("BTC/USDT"),
        "base_order_quote": decimals("10", "200"),
        "safety_order_quote": decimals("10", "200"),
        "max_safety_orders": st.integers(0, 5),
        "price_deviation_pct": decimals("0.3", "3"),
        "safety_volume_scale": decimals("1", "2"),
        "safety_step_scale": decimals("1", "1.5"),
        "take_profit_pct": decimals("0.5", "3"),  # > 2 × 0.1% fee
    },
    optional={"stop_loss_pct": decimals("0.5", "8")},
)


@settings(max_examples=200, deadline=None)
@given(config=configs, data=walks())
def test_invariants_on_random_walks(config: dict, data: list) -> None:
    result = run_reference(config, data)
    deals = result["deals"]

    assert result["realized_pnl"] == sum((d["pnl"] for d in deals), Decimal(0))
    assert result["fees_closed_deals"] == sum((d["fees"] for d in deals), Decimal(0))
    assert result["deals_closed"] == len(deals) == result["take_profits"] + result["stop_losses"]
    assert result["deals_open"] == 1  # unlimited: a deal is always open after each close
    assert result["orders_rejected"] == 0
    assert result["max_drawdown"] >= 0
    for deal in deals:
        if deal["reason"] == "take_profit":
            assert deal["pnl"] > 0
        assert deal["safety_orders"] <= int(config["max_safety_orders"])
    for previous, following in pairwise(deals):
        assert following["opened"] == previous["closed"]


@settings(max_examples=100, deadline=None)
@given(config=configs, data=walks())
def test_a_balance_that_always_suffices_changes_nothing(config: dict, data: list) -> None:
    # free = balance + realized so far − committed, and committed never exceeds its maximum,
    # so max_capital_committed + every loss is always enough: nothing is rejected. (A hair more:
    # units × price, the cost of a fill, can round one 28-digit ulp above the quote.)
    unlimited = run_reference(config, data)
    losses = sum((-d["pnl"] for d in unlimited["deals"] if d["pnl"] < 0), Decimal(0))
    balance = unlimited["max_capital_committed"] + losses + Decimal("1e-12")
    funded = run_reference(config, data, balance=balance)
    assert funded == unlimited
