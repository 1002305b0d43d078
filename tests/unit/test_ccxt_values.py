"""ccxt's unified values into the port: exact Decimals, statuses, fees in base or a third
asset. (The recorded-response tests run the same code on real ccxt output.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.exchanges.ccxt_values import decimal_from, status_from
from domain.errors import DomainError
from domain.orders import OrderSide, OrderStatus
from domain.ports import Trade


@given(st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=None,
                   allow_nan=False, allow_infinity=False).map(lambda d: +Decimal(f"{d:.15g}")))
def test_a_float_from_a_decimal_text_of_up_to_15_digits_reads_back_exactly(value: Decimal):
    assert decimal_from(float(str(value)), "x") == value


def test_strings_stay_as_the_exchange_wrote_them_and_non_numbers_are_refused():
    assert str(decimal_from("0.01392600", "fee")) == "0.01392600"
    assert decimal_from(None, "fee") is None and decimal_from("", "fee") is None
    with pytest.raises(DomainError):
        decimal_from(float("nan"), "price")


@pytest.mark.parametrize(("unified", "filled", "status"), [
    ("open", "0", OrderStatus.ACCEPTED),
    ("open", "0.3", OrderStatus.PARTIALLY_FILLED),
    (None, "0", OrderStatus.ACCEPTED),  # an acknowledgement with ids only (Bybit)
    ("closed", "1", OrderStatus.FILLED),
    ("canceled", "0.3", OrderStatus.CANCELLED),  # its fills stay with it
    ("expired", "0", OrderStatus.EXPIRED),
    ("rejected", "0", OrderStatus.REJECTED),
])
def test_unified_status_maps_to_ours(unified, filled, status):
    assert status_from(unified, Decimal(filled)) is status


def test_an_unknown_status_is_a_named_error():
    with pytest.raises(DomainError) as unknown:
        status_from("pending_new", Decimal(0))
    assert unknown.value.code == "EXCHANGE_ERROR"


def trade(fee: str, currency: str, fee_quote: str | None = None) -> Trade:
    return Trade("t1", Decimal("30000"), Decimal("0.01"), Decimal(fee), currency,
                 fee_quote=None if fee_quote is None else Decimal(fee_quote))


def test_a_fee_in_base_is_taken_from_what_a_buy_adds_and_a_sell_removes():
    assert trade("0.00001", "BTC").base_held_change(OrderSide.BUY, "BTC") == Decimal("0.00999")
    assert trade("0.00001", "BTC").base_held_change(OrderSide.SELL, "BTC") == Decimal("-0.01001")
    assert trade("0.3", "USDT").base_held_change(OrderSide.BUY, "BTC") == Decimal("0.01")


def test_a_fee_is_valued_in_quote_as_paid_at_the_price_or_at_the_recorded_rate():
    assert trade("0.3", "USDT").fee_in_quote("BTC", "USDT") == Decimal("0.3")
    assert trade("0.00001", "BTC").fee_in_quote("BTC", "USDT") == Decimal("0.3")
    assert trade("0.0005", "BNB", "0.3").fee_in_quote("BTC", "USDT") == Decimal("0.3")
    assert trade("0.0005", "BNB").fee_in_quote("BTC", "USDT") is None  # no rate known
