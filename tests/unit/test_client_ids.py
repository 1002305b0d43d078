"""Client order ids: derived from the order's id, within each exchange's rules, reversible."""

from __future__ import annotations

import re
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from adapters.exchanges.client_ids import client_order_id_for, is_ours, order_id_from

BINANCE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")  # Binance's newClientOrderId rule
OKX = re.compile(r"^[A-Za-z0-9]{1,32}$")  # OKX clOrdId: up to 32 letters and digits


@given(st.uuids())
def test_binance_ids_fit_its_rule_and_lead_back_to_the_order(order_id: UUID):
    cid = client_order_id_for(order_id, "binance")
    assert BINANCE.match(cid) and cid.startswith("tt")
    assert cid == client_order_id_for(order_id.hex, "binance")  # same order, same id
    assert is_ours(cid, "binance") and order_id_from(cid, "binance") == order_id


@given(st.uuids())
def test_okx_ids_fit_its_shorter_alphanumeric_rule(order_id: UUID):
    cid = client_order_id_for(order_id, "okx")
    assert OKX.match(cid) and cid.startswith("tt")
    assert order_id_from(cid, "okx") == order_id


@given(st.uuids(), st.uuids())
def test_two_orders_never_share_an_id(a: UUID, b: UUID):
    assert (client_order_id_for(a, "bybit") == client_order_id_for(b, "bybit")) == (a == b)


def test_ids_others_made_are_not_ours():
    assert not is_ours("x-R4BD3S825806ed40c861260428a48c", "binance")  # ccxt's own
    assert not is_ours("1609920528444036608", "bybit")
    assert not is_ours(None, "binance") and order_id_from("web_123", "binance") is None
