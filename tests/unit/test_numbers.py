"""The one parser of typed numbers: ASCII decimal notation only, at most 28 significant
digits, a magnitude within 1e±30, each field's range; every refusal a DomainError with its
own code and field, whatever the input."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.dca import FIELD_BOUNDS, MAX_COOLDOWN_SECONDS, DcaConfig
from domain.errors import DomainError, InvalidConfigError
from domain.money import to_decimal
from domain.numbers import BALANCE, FEE_RATE, PRICE, parse_number, parse_whole
from tests.stubs import a_config, a_config_input

D = Decimal
README = Path(__file__).resolve().parents[2] / "README.md"


def code_of(raw: object, bounds=None) -> str:
    with pytest.raises(DomainError) as caught:
        parse_number(raw, "x", bounds)
    assert caught.value.field == "x"
    return caught.value.code


@pytest.mark.parametrize(("raw", "code"), [
    ("١٢", "INVALID_NUMBER"),  # Arabic-Indic digits: Decimal() takes them
    ("1_0", "INVALID_NUMBER"),  # digit grouping: Decimal() takes it
    ("１２", "INVALID_NUMBER"),  # fullwidth digits
    ("NaN", "INVALID_NUMBER"), ("Infinity", "INVALID_NUMBER"), ("-inf", "INVALID_NUMBER"),
    ("0x10", "INVALID_NUMBER"), ("1 000", "INVALID_NUMBER"), ("", "INVALID_NUMBER"),
    ("1e", "INVALID_NUMBER"), ("e5", "INVALID_NUMBER"), ("1e1234567", "INVALID_NUMBER"),
    (1.5, "FLOAT_NOT_ALLOWED"), (True, "INVALID_NUMBER"), (None, "INVALID_NUMBER"),
    (D("NaN"), "INVALID_NUMBER"),
    ("1e999999", "EXPONENT_OUT_OF_RANGE"), ("-1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("1e-999999", "EXPONENT_OUT_OF_RANGE"), ("1e31", "EXPONENT_OUT_OF_RANGE"),
    (10**31, "EXPONENT_OUT_OF_RANGE"),
    ("1.0000000000000000000000000001", "TOO_MANY_DIGITS"),  # 29 significant digits
    ("1" * 65, "TOO_MANY_DIGITS"),  # longer than any number
])
def test_anything_that_is_not_a_plain_bounded_number_is_refused_by_name(raw, code):
    assert code_of(raw) == code


@pytest.mark.parametrize(("raw", "value"), [
    (" 12.50 ", D("12.50")), ("+3", D(3)), (".5", D("0.5")), ("5.", D(5)), ("1E-30", D("1e-30")),
    ("9.99e30", D("9.99e30")), ("0", D(0)), ("-0.0", D("-0.0")), (7, D(7)),
    ("1.000000000000000000000000000000000", D(1)),  # trailing zeros are not digits kept
    ("0.0000000000000000000000000000000000001", None),
])
def test_plain_numbers_parse_exactly_as_written(raw, value):
    if value is None:
        assert code_of(raw) == "EXPONENT_OUT_OF_RANGE"
        return
    parsed = parse_number(raw, "x")
    assert parsed == value
    if isinstance(raw, str):  # as Decimal reads the text: nothing rounded on the way
        assert parsed.as_tuple() == Decimal(raw.strip()).as_tuple()


def test_to_decimal_takes_ascii_digits_only_as_well():
    with pytest.raises(DomainError) as caught:
        to_decimal("١٢", "amount")
    assert (caught.value.code, caught.value.field) == ("INVALID_NUMBER", "amount")


@pytest.mark.parametrize(("bounds", "raw", "code"), [
    (PRICE, "0", "NOT_POSITIVE"), (PRICE, "-5", "NOT_POSITIVE"),
    (PRICE, "1e-13", "OUT_OF_RANGE"), (PRICE, "1000000000001", "OUT_OF_RANGE"),
    (BALANCE, "-1", "OUT_OF_RANGE"), (BALANCE, "1e16", "OUT_OF_RANGE"),
    (FEE_RATE, "1", "OUT_OF_RANGE"), (FEE_RATE, "-0.001", "OUT_OF_RANGE"),
])
def test_cli_options_have_their_own_ranges(bounds, raw, code):
    assert code_of(raw, bounds) == code


@pytest.mark.parametrize(("bounds", "raw"), [
    (PRICE, "1e-12"), (PRICE, "1e12"), (BALANCE, "0"), (BALANCE, "1e15"), (FEE_RATE, "0"),
    (FEE_RATE, "0.999")])
def test_the_ends_of_a_range_are_as_the_readme_says(bounds, raw):
    assert parse_number(raw, "x", bounds) == D(raw)


def test_whole_numbers_are_whole():
    assert parse_whole("12", "n") == 12
    with pytest.raises(DomainError) as caught:
        parse_whole("1.5", "n")
    assert caught.value.code == "NOT_AN_INTEGER"


@pytest.mark.parametrize(("field", "value", "code"), [
    ("base_order_quote", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("base_order_quote", "0.000000001", "OUT_OF_RANGE"),
    ("base_order_quote", "1000000000001", "OUT_OF_RANGE"),
    ("safety_order_quote", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("take_profit_pct", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("take_profit_pct", "1001", "OUT_OF_RANGE"),
    ("safety_volume_scale", "1e999999", "EXPONENT_OUT_OF_RANGE"),
    ("safety_volume_scale", "10.01", "OUT_OF_RANGE"),
    ("safety_step_scale", "0.001", "OUT_OF_RANGE"),
    ("price_deviation_pct", "100", "OUT_OF_RANGE"),
    ("stop_loss_pct", "0.00001", "OUT_OF_RANGE"),
    ("cooldown_seconds", 99999999999999999999999, "OUT_OF_RANGE"),
    ("cooldown_seconds", MAX_COOLDOWN_SECONDS + 1, "OUT_OF_RANGE"),
    ("max_safety_orders", "1e999999", "EXPONENT_OUT_OF_RANGE"),
])
def test_a_configuration_names_the_bound_it_breaks(field, value, code):
    with pytest.raises(InvalidConfigError) as caught:
        DcaConfig.from_mapping(a_config_input(**{field: value}))
    assert [(v.code, v.field) for v in caught.value.violations] == [(code, field)]


def test_a_trailing_take_profit_out_of_its_range_is_one_violation():
    with pytest.raises(InvalidConfigError) as caught:
        DcaConfig.from_mapping(a_config_input(trailing_take_profit_pct="2000"))
    assert [(v.code, v.field) for v in caught.value.violations] == [
        ("OUT_OF_RANGE", "trailing_take_profit_pct")]


def test_a_configuration_built_in_code_is_held_to_the_same_bounds():
    with pytest.raises(InvalidConfigError) as caught:
        a_config(take_profit_pct=D("1e999999"), safety_volume_scale=D("1e999999"))
    assert {(v.code, v.field) for v in caught.value.violations} == {
        ("EXPONENT_OUT_OF_RANGE", "take_profit_pct"),
        ("EXPONENT_OUT_OF_RANGE", "safety_volume_scale")}


@given(st.text(max_size=40))
def test_any_text_is_a_bounded_number_or_a_named_refusal(text):
    try:
        value = parse_number(text, "x")
    except DomainError as error:
        assert error.code in {"INVALID_NUMBER", "TOO_MANY_DIGITS", "EXPONENT_OUT_OF_RANGE"}
        return
    assert value.is_finite() and (not value or abs(value.adjusted()) <= 30)
    assert re.fullmatch(r"[0-9+\-.eE]+", text.strip())


@given(st.decimals(min_value=D("-1e20"), max_value=D("1e20"), allow_nan=False,
                   allow_infinity=False, places=8))
def test_any_plain_decimal_round_trips_exactly(value):
    assert parse_number(str(value), "x") == value


def test_the_readme_documents_each_fields_range():
    table = README.read_text().split("### Bot configuration (`bot.json`)")[1].split("###")[0]
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()
            if line.startswith("| `")}
    for field, bounds in FIELD_BOUNDS.items():
        assert bounds.describe() in rows[field], field
    assert f"at most {MAX_COOLDOWN_SECONDS}" in rows["cooldown_seconds"]
    for bounds in (PRICE, BALANCE, FEE_RATE):
        assert bounds.describe() in table
