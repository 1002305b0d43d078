"""A DCA configuration names every rule it breaks, and its ladder follows 3Commas' formulas."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.dca import DcaConfig, LadderLevel, ladder, safety_orders
from domain.errors import DomainError, InvalidConfigError
from tests.strategies import dca_configs
from tests.stubs import a_config, a_config_input

D = Decimal


def _violations(**overrides: object) -> list[tuple[str, str | None]]:
    with pytest.raises(InvalidConfigError) as caught:
        a_config(**overrides)
    assert caught.value.code == "INVALID_CONFIG"
    return [(v.code, v.field) for v in caught.value.violations]


def _input_violations(data: dict[str, object]) -> list[tuple[str, str | None]]:
    with pytest.raises(InvalidConfigError) as caught:
        DcaConfig.from_mapping(data)
    return [(v.code, v.field) for v in caught.value.violations]


# --- validation: one named error per broken rule -------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"pair": "BTCUSDT"}, "INVALID_PAIR", "pair"),
        ({"pair": "BTC/"}, "INVALID_PAIR", "pair"),
        ({"pair": "BTC/USDT/EUR"}, "INVALID_PAIR", "pair"),
        ({"base_order_quote": D(0)}, "NOT_POSITIVE", "base_order_quote"),
        ({"safety_order_quote": D(-1)}, "NOT_POSITIVE", "safety_order_quote"),
        ({"max_safety_orders": -1}, "OUT_OF_RANGE", "max_safety_orders"),
        ({"max_safety_orders": 101}, "OUT_OF_RANGE", "max_safety_orders"),
        ({"price_deviation_pct": D(0)}, "NOT_POSITIVE", "price_deviation_pct"),
        ({"safety_volume_scale": D(0)}, "NOT_POSITIVE", "safety_volume_scale"),
        ({"safety_step_scale": D("-1.5")}, "NOT_POSITIVE", "safety_step_scale"),
        ({"take_profit_pct": D(0)}, "NOT_POSITIVE", "take_profit_pct"),
        ({"stop_loss_pct": D(0)}, "OUT_OF_RANGE", "stop_loss_pct"),
        ({"stop_loss_pct": D(100)}, "OUT_OF_RANGE", "stop_loss_pct"),
        ({"trailing_take_profit_pct": D(0)}, "OUT_OF_RANGE", "trailing_take_profit_pct"),
        ({"trailing_take_profit_pct": D(2)}, "OUT_OF_RANGE", "trailing_take_profit_pct"),
        ({"cooldown_seconds": -1}, "NEGATIVE", "cooldown_seconds"),
    ],
)
def test_config_breaking_one_rule_reports_exactly_that_rule(
    overrides: dict[str, object], code: str, field: str
) -> None:
    assert _violations(**overrides) == [(code, field)]


def test_config_breaking_several_rules_reports_each_one() -> None:
    found = _violations(base_order_quote=D(0), take_profit_pct=D(-1), cooldown_seconds=-5)

    assert found == [
        ("NOT_POSITIVE", "base_order_quote"),
        ("NOT_POSITIVE", "take_profit_pct"),
        ("NEGATIVE", "cooldown_seconds"),
    ]


@pytest.mark.parametrize("max_safety_orders", [0, 1, 100])
def test_config_max_safety_orders_within_0_to_100_is_accepted(max_safety_orders: int) -> None:
    config = a_config(
        max_safety_orders=max_safety_orders,
        price_deviation_pct=D("0.5"),
        safety_step_scale=D(1),
    )

    assert config.max_safety_orders == max_safety_orders


def test_config_without_safety_orders_needs_no_safety_order_quote() -> None:
    config = a_config(max_safety_orders=0, safety_order_quote=D(0))

    assert len(ladder(config, D(100))) == 1


def test_config_whose_deepest_order_lands_on_zero_is_rejected() -> None:
    # 50% + 50% = the price itself: the second safety order would buy at 0.
    found = _violations(price_deviation_pct=D(50), safety_step_scale=D(1), max_safety_orders=2)

    assert found == [("LADDER_BELOW_ZERO", "price_deviation_pct")]


def test_config_whose_deepest_order_goes_below_zero_is_rejected() -> None:
    # 1 + 1.5 + … grows past 100% by the 12th safety order at a 1.5 step scale.
    found = _violations(max_safety_orders=12, safety_step_scale=D("1.5"))

    assert found == [("LADDER_BELOW_ZERO", "price_deviation_pct")]


def test_config_whose_deepest_order_stays_just_above_zero_is_accepted() -> None:
    config = a_config(price_deviation_pct=D("49.99"), safety_step_scale=D(1), max_safety_orders=2)

    assert ladder(config, D(100))[-1].price == D("0.0200")


# --- parsing user input ---------------------------------------------------------------------


def test_from_mapping_parses_strings_and_ints_exactly() -> None:
    config = DcaConfig.from_mapping(a_config_input(pair=" btc/usdt ", stop_loss_pct="12.5"))

    assert config == a_config(stop_loss_pct=D("12.5"))


def test_from_mapping_unknown_field_is_named() -> None:
    found = _input_violations(a_config_input(take_proft_pct="2"))

    assert found == [("UNKNOWN_FIELD", "take_proft_pct")]


@pytest.mark.parametrize(
    "field", ["pair", "base_order_quote", "max_safety_orders", "take_profit_pct"]
)
def test_from_mapping_missing_required_field_is_named(field: str) -> None:
    data = a_config_input()
    del data[field]

    assert _input_violations(data) == [("MISSING_FIELD", field)]


def test_from_mapping_missing_optional_fields_take_their_defaults() -> None:
    data = a_config_input()
    for optional in ("stop_loss_pct", "trailing_take_profit_pct", "cooldown_seconds"):
        del data[optional]

    assert DcaConfig.from_mapping(data).cooldown_seconds == 0


@pytest.mark.parametrize("field", ["base_order_quote", "take_profit_pct", "stop_loss_pct"])
def test_from_mapping_float_field_is_refused_by_name(field: str) -> None:
    assert _input_violations(a_config_input(**{field: 2.5})) == [("FLOAT_NOT_ALLOWED", field)]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("max_safety_orders", "2.5", "NOT_AN_INTEGER"),
        ("max_safety_orders", True, "INVALID_NUMBER"),
        ("cooldown_seconds", "soon", "INVALID_NUMBER"),
        ("pair", 42, "INVALID_PAIR"),
        ("price_deviation_pct", "NaN", "INVALID_NUMBER"),
    ],
)
def test_from_mapping_unparseable_value_is_named(field: str, value: object, code: str) -> None:
    assert _input_violations(a_config_input(**{field: value})) == [(code, field)]


def test_from_mapping_reports_every_problem_at_once() -> None:
    data = a_config_input(colour="blue", base_order_quote=100.0)
    del data["pair"]

    assert sorted(_input_violations(data)) == [
        ("FLOAT_NOT_ALLOWED", "base_order_quote"),
        ("MISSING_FIELD", "pair"),
        ("UNKNOWN_FIELD", "colour"),
    ]


def test_from_mapping_rule_violation_after_parsing_is_reported() -> None:
    assert _input_violations(a_config_input(take_profit_pct="0")) == [
        ("NOT_POSITIVE", "take_profit_pct")
    ]


# --- hypothesis: valid configurations -------------------------------------------------------


def _pct(low: str, high: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=D(low), max_value=D(high), places=2)


@st.composite
def valid_configs(draw: st.DrawFn) -> DcaConfig:
    """Realistic bots whose deepest order stays at least 1% above zero."""
    step_scale = draw(_pct("0.5", "2"))
    n = draw(st.integers(0, 30))
    while n and safety_factor(step_scale, n) * D("0.01") > 99:
        n -= 1
    room = D(99) / safety_factor(step_scale, n) if n else D(10)
    deviation = draw(_pct("0.01", str(min(D(10), room).quantize(D("0.01"), "ROUND_DOWN"))))
    take_profit = draw(_pct("0.1", "50"))
    trailing = draw(st.none() | _pct("0.01", str(take_profit - D("0.01"))))
    return DcaConfig(
        pair=draw(st.sampled_from(["BTC/USDT", "ETH/BTC", "SOL/EUR"])),
        base_order_quote=draw(_pct("0.01", "100000")),
        safety_order_quote=draw(_pct("0.01", "100000")),
        max_safety_orders=n,
        price_deviation_pct=deviation,
        safety_volume_scale=draw(_pct("0.5", "3")),
        safety_step_scale=step_scale,
        take_profit_pct=take_profit,
        stop_loss_pct=draw(st.none() | _pct("0.1", "99")),
        trailing_take_profit_pct=trailing,
        cooldown_seconds=draw(st.integers(0, 86_400)),
    )


def safety_factor(step_scale: Decimal, n: int) -> Decimal:
    """1 + SS + … + SS^(n−1)."""
    return sum((step_scale**k for k in range(n)), D(0))


prices = st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8)
ladder_settings = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(valid_configs())
@ladder_settings
def test_config_mapping_round_trips_through_json(config: DcaConfig) -> None:
    assert DcaConfig.from_mapping(json.loads(json.dumps(config.to_mapping()))) == config


# --- the ladder against 3Commas' formulas ---------------------------------------------------


def expected_ladder(c: DcaConfig, p0: Decimal) -> list[dict[str, Fraction | None]]:
    """3Commas' formulas, in exact rational arithmetic, written apart from the code under test."""
    F = Fraction
    rows: list[dict[str, Fraction | None]] = []
    total_quote = total_units = F(0)
    for n in range(c.max_safety_orders + 1):
        if n == 0:
            quote, deviation = F(c.base_order_quote), F(0)
        else:
            quote = F(c.safety_order_quote) * F(c.safety_volume_scale) ** (n - 1)
            deviation = F(c.price_deviation_pct) * sum(
                F(c.safety_step_scale) ** k for k in range(n)
            )
        price = F(p0) * (1 - deviation / 100)
        units = quote / price
        total_quote += quote
        total_units += units
        average = total_quote / total_units
        rows.append(
            {
                "deviation_pct": deviation,
                "price": price,
                "quote": quote,
                "units": units,
                "total_quote": total_quote,
                "total_units": total_units,
                "average_price": average,
                "take_profit_price": average * (1 + F(c.take_profit_pct) / 100),
                "stop_loss_price": (
                    None if c.stop_loss_pct is None else average * (1 - F(c.stop_loss_pct) / 100)
                ),
            }
        )
    return rows


def _agrees_to_10_digits(actual: Decimal | None, expected: Fraction | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return abs(Fraction(actual) - expected) <= abs(expected) * Fraction(1, 10**10)


def test_ladder_worked_example_matches_3commas() -> None:
    config = a_config(
        base_order_quote=D(10),
        safety_order_quote=D(20),
        max_safety_orders=3,
        price_deviation_pct=D(1),
        safety_volume_scale=D(2),
        safety_step_scale=D("1.5"),
        take_profit_pct=D(1),
        stop_loss_pct=D(10),
    )

    levels = ladder(config, D(100))

    assert [lv.deviation_pct for lv in levels] == [0, 1, D("2.5"), D("4.75")]
    assert [lv.price for lv in levels] == [100, 99, D("97.5"), D("95.25")]
    assert [lv.quote for lv in levels] == [10, 20, 40, 80]
    assert levels[-1].total_quote == 150
    assert levels[1].average_price.quantize(D("0.0001")) == D("99.3311")
    assert levels[1].take_profit_price.quantize(D("0.0001")) == D("100.3244")
    assert levels[1].stop_loss_price.quantize(D("0.0001")) == D("89.3980")


@given(valid_configs(), prices)
@ladder_settings
def test_ladder_matches_3commas_formulas_to_10_significant_digits(
    config: DcaConfig, p0: Decimal
) -> None:
    levels = ladder(config, p0)

    assert len(levels) == config.max_safety_orders + 1
    for level, expected in zip(levels, expected_ladder(config, p0), strict=True):
        for name, value in expected.items():
            actual = getattr(level, name)
            assert _agrees_to_10_digits(actual, value), (level.n, name, actual, float(value))


@given(valid_configs(), prices)
@ladder_settings
def test_ladder_prices_fall_strictly_and_stay_positive(config: DcaConfig, p0: Decimal) -> None:
    fill_prices = [level.price for level in ladder(config, p0)]

    assert all(price > 0 for price in fill_prices)
    assert all(a > b for a, b in pairwise(fill_prices))


@given(valid_configs(), prices)
@ladder_settings
def test_ladder_safety_quotes_grow_by_the_volume_scale(config: DcaConfig, p0: Decimal) -> None:
    quotes = [level.quote for level in ladder(config, p0)][1:]

    if quotes:
        assert quotes[0] == config.safety_order_quote
    for smaller, larger in pairwise(quotes):
        assert _agrees_to_10_digits(larger / smaller, Fraction(config.safety_volume_scale))


@given(valid_configs(), prices)
@ladder_settings
def test_ladder_average_entry_lies_between_lowest_and_highest_fill(
    config: DcaConfig, p0: Decimal
) -> None:
    levels = ladder(config, p0)
    # Decimal divides to 28 digits; a last-digit wobble is not a different price.
    wobble = D("1e-20")
    for filled in range(1, len(levels) + 1):
        so_far = levels[:filled]
        low, high = min(lv.price for lv in so_far), max(lv.price for lv in so_far)
        average = so_far[-1].average_price
        assert low * (1 - wobble) <= average <= high * (1 + wobble)


@given(valid_configs(), prices)
@ladder_settings
def test_ladder_take_profit_above_and_stop_loss_below_average(
    config: DcaConfig, p0: Decimal
) -> None:
    for level in ladder(config, p0):
        assert level.take_profit_price > level.average_price
        if config.stop_loss_pct is None:
            assert level.stop_loss_price is None
        else:
            assert level.stop_loss_price < level.average_price


@given(valid_configs(), prices)
@ladder_settings
def test_ladder_level_0_is_the_base_order_at_the_entry_price(
    config: DcaConfig, p0: Decimal
) -> None:
    base: LadderLevel = ladder(config, p0)[0]

    assert (base.n, base.deviation_pct, base.price) == (0, 0, p0)
    assert base.quote == base.total_quote == config.base_order_quote
    assert base.units == base.total_units


@pytest.mark.parametrize("price", [D(0), D(-1), "abc"])
def test_ladder_non_positive_entry_price_is_refused(price: object) -> None:
    with pytest.raises(DomainError) as caught:
        ladder(a_config(), price)  # type: ignore[arg-type]

    assert caught.value.field == "price"


def test_ladder_float_entry_price_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        ladder(a_config(), 100.0)  # type: ignore[arg-type]

    assert caught.value.code == "FLOAT_NOT_ALLOWED"


@settings(max_examples=200, deadline=None)
@given(dca_configs(), st.decimals(min_value="0.0001", max_value="1000000", places=4))
def test_the_safety_orders_the_engine_places_are_the_ladders_to_the_digit(mapping, price):
    config = DcaConfig.from_mapping(mapping)
    placed = safety_orders(config, price)
    planned = [(level.n, level.price, level.units) for level in ladder(config, price)[1:]]
    # str: the same digits and the same exponent, as events would write them
    assert [tuple(map(str, order)) for order in placed] == [
        tuple(map(str, level)) for level in planned]


def test_configurations_equal_in_value_keep_their_own_digits():
    plain = a_config(price_deviation_pct=Decimal("1"))
    padded = a_config(price_deviation_pct=Decimal("1.000"))
    assert plain == padded
    assert str(safety_orders(plain, Decimal("100"))[0][1]) == "99.00"
    assert str(safety_orders(padded, Decimal("100"))[0][1]) == "99.000"
