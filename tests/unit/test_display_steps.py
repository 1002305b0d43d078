"""Display forms in a real market's precision: Binance's recorded DOGE/USDT and BTC/USDT
rules (ccxt's own recorded markets, tests/data/ccxt-static), read as the live venue reads
them, then a price shown to the tick and an amount to the step."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.exchanges.ccxt_rules import rules_of
from api.graphql.display import shown_as, shown_in_steps
from tests.ccxt_replay import offline_client


@pytest.fixture(scope="module")
def binance():
    client = offline_client("binance")
    return lambda pair: rules_of(client.markets[pair], client.precisionMode)


def test_doge_prices_show_five_decimals_and_amounts_whole_coins(binance):
    rules = binance("DOGE/USDT")
    price, amount = Decimal("0.1623456789"), Decimal("1234.56789")

    assert shown_in_steps(price, rules.price_step) == "0.16235"
    assert shown_in_steps(amount, rules.amount_step) == "1235"
    # without the market: the quote's cents and the crypto's 8 decimals
    assert shown_as(price, "USDT") == "0.16" and shown_as(amount, "DOGE") == "1234.56789000"


def test_btc_amounts_show_the_exchanges_five_decimals(binance):
    rules = binance("BTC/USDT")

    assert shown_in_steps(Decimal("0.0012345678"), rules.amount_step) == "0.00123"
    assert shown_in_steps(Decimal("109612.345"), rules.price_step) == "109612.34"  # half even


def test_a_step_that_is_not_a_power_of_ten_rounds_to_its_multiples():
    assert shown_in_steps(Decimal("101.26"), Decimal("0.5")) == "101.5"
    assert shown_in_steps(Decimal("1234"), Decimal("10")) == "1230"


@given(st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=10,
                   allow_nan=False, allow_infinity=False),
       st.sampled_from([Decimal("0.00001"), Decimal("0.01"), Decimal("0.5"), Decimal(1),
                        Decimal("0.0001"), Decimal(10)]))
def test_the_shown_value_is_the_nearest_multiple_of_the_step(value, step):
    shown = Decimal(shown_in_steps(value, step))
    assert shown % step == 0
    assert abs(shown - value) <= step / 2
