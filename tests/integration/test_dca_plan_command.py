"""`tradetape dca-plan`: the ladder a user sees, checked against the 3Commas formulas."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.cli import main


def formulas(cfg: dict, price: Fraction) -> list[dict[str, Fraction]]:
    """The ladder computed exactly with fractions, independently of the domain code."""
    levels, total_q, total_u = [], Fraction(0), Fraction(0)
    for n in range(cfg["max_safety_orders"] + 1):
        if n == 0:
            quote, dev = Fraction(cfg["base_order_quote"]), Fraction(0)
        else:
            quote = Fraction(cfg["safety_order_quote"]) * Fraction(
                cfg["safety_volume_scale"]) ** (n - 1)
            dev = Fraction(cfg["price_deviation_pct"]) * sum(
                Fraction(cfg["safety_step_scale"]) ** k for k in range(n))
        p = price * (1 - dev / 100)
        total_q += quote
        total_u += quote / p
        avg = total_q / total_u
        levels.append({"deviation_pct": dev, "price": p, "quote": quote, "units": quote / p,
                       "total_quote": total_q, "total_units": total_u, "average_price": avg,
                       "take_profit_price": avg * (1 + Fraction(cfg["take_profit_pct"]) / 100)})
    return levels


def close_enough(shown: str, exact: Fraction) -> bool:
    value = Fraction(Decimal(shown))
    return (exact == 0 and value == 0) or abs(value - exact) <= abs(exact) * Fraction(1, 10**10)


decimals = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("5"), places=2)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # readouterr per example
@given(base=decimals, so=decimals, n=st.integers(0, 12), dev=st.decimals(
    min_value=Decimal("0.1"), max_value=Decimal("3"), places=2), vs=decimals,
    ss=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.5"), places=2),
    tp=decimals, price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"),
                                   places=4))
def test_dca_plan_json_matches_the_3commas_formulas_to_10_significant_digits(
    tmp_path_factory, capsys, base, so, n, dev, vs, ss, tp, price
):
    cfg = {"pair": "BTC/USDT", "base_order_quote": str(base), "safety_order_quote": str(so),
           "max_safety_orders": n, "price_deviation_pct": str(dev),
           "safety_volume_scale": str(vs), "safety_step_scale": str(ss),
           "take_profit_pct": str(tp)}
    expected = formulas(cfg, Fraction(price))
    if expected[-1]["price"] <= 0:
        return  # rejected configurations are tested below
    path = tmp_path_factory.mktemp("plan") / "bot.json"
    path.write_text(json.dumps(cfg))
    assert main(["dca-plan", "--config", str(path), "--price", str(price), "--json"]) == 0
    levels = json.loads(capsys.readouterr().out)["levels"]
    assert [lv["n"] for lv in levels] == list(range(n + 1))
    for shown, exact in zip(levels, expected, strict=True):
        for key, value in exact.items():
            assert close_enough(shown[key], value), (key, shown[key], float(value))


def test_dca_plan_table_lists_the_base_order_and_every_safety_order(tmp_path, capsys):
    path = tmp_path / "bot.json"
    path.write_text(json.dumps({
        "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "100",
        "max_safety_orders": 3, "price_deviation_pct": "1", "safety_volume_scale": "2",
        "safety_step_scale": "1", "take_profit_pct": "1"}))
    assert main(["dca-plan", "--config", str(path), "--price", "100"]) == 0
    out = capsys.readouterr().out
    assert "base" in out and "97" in out and "800" in out  # deepest price, total quote


@pytest.mark.parametrize(
    ("config", "expected_lines"),
    [
        ({"pair": "BTC", "base_order_quote": "0", "safety_order_quote": "1",
          "max_safety_orders": 101, "price_deviation_pct": "1", "safety_volume_scale": "1",
          "safety_step_scale": "1", "take_profit_pct": "-1"},
         ["INVALID_PAIR (pair)", "NOT_POSITIVE (base_order_quote)",
          "OUT_OF_RANGE (max_safety_orders)", "NOT_POSITIVE (take_profit_pct)"]),
        ({"pair": "BTC/USDT", "base_order_quote": 10.5, "safety_order_quote": "1",
          "max_safety_orders": 2, "price_deviation_pct": "1", "safety_volume_scale": "1",
          "safety_step_scale": "1", "take_profit_pct": "1", "colour": "red"},
         ["UNKNOWN_FIELD (colour)", "FLOAT_NOT_ALLOWED (base_order_quote)"]),
        ({"pair": "BTC/USDT", "base_order_quote": "10", "safety_order_quote": "1",
          "max_safety_orders": 10, "price_deviation_pct": "15", "safety_volume_scale": "1",
          "safety_step_scale": "1", "take_profit_pct": "1"},
         ["LADDER_BELOW_ZERO (price_deviation_pct)"]),
    ],
    ids=["several-rules", "float-and-unknown", "ladder-below-zero"],
)
def test_dca_plan_invalid_configuration_exits_2_with_one_line_per_rule(
    tmp_path, capsys, config, expected_lines
):
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(config))
    assert main(["dca-plan", "--config", str(path), "--price", "100", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == len(expected_lines)
    for expected in expected_lines:
        assert any(expected in line for line in lines), (expected, lines)
