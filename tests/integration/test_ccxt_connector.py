"""The ccxt connector under the real ccxt classes, with no network: ccxt's own recorded
Binance balance answer (``tests/data/recorded/binance_spot_balance.json``, provenance in
it) served through the HTTP session, a closed local port, and an exchange ccxt does not
know."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from requests.adapters import BaseAdapter

from adapters.exchanges.ccxt_client import ApiCredentials, open_client
from adapters.exchanges.ccxt_connector import CcxtExchangeConnector
from domain.errors import DomainError
from domain.ports import Balance

RECORDED = json.loads((Path(__file__).resolve().parents[1] / "data" / "recorded"
                       / "binance_spot_balance.json").read_text())
KEYS = ApiCredentials("recorded-api-key-0123456789", "recorded-secret-0123456789")


class RecordedHttpFake(BaseAdapter):
    """The network edge, faked: every request answered with one recorded response body."""

    def __init__(self, body: object, status: int = 200):
        super().__init__()
        self.body, self.status, self.urls = body, status, []

    def send(self, request, **kwargs):
        self.urls.append(request.url)
        response = requests.Response()
        response.status_code, response.url = self.status, request.url
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = request
        return response

    def close(self) -> None:
        pass


def recorded_binance(body: object, status: int = 200):
    """A client factory: the real binance class, its markets and one answer recorded."""
    markets = RECORDED["markets"]
    fake = RecordedHttpFake(body, status)

    def factory(exchange_id, **options):
        client = open_client(exchange_id, **options)
        client.set_markets(list(markets.values()))
        client.session.mount("https://", fake)
        client.session.mount("http://", fake)
        return client

    return factory, fake


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed once the socket is: nothing listens there


def test_recorded_binance_balance_becomes_exact_decimals_without_empty_assets() -> None:
    factory, fake = recorded_binance(RECORDED["fetchBalance"]["httpResponse"])
    balances = CcxtExchangeConnector(client_factory=factory).verify("binance", True, KEYS)
    # The recorded answer: BTC 0, LTC 0.91974100 free, ETH 0.02229833 free, nothing locked.
    assert balances == {"ETH": Balance(Decimal("0.02229833"), Decimal(0)),
                        "LTC": Balance(Decimal("0.91974100"), Decimal(0))}
    assert all(isinstance(b.free, Decimal) and isinstance(b.locked, Decimal)
               for b in balances.values())
    assert [url.split("?")[0] for url in fake.urls] == [
        "https://testnet.binance.vision/api/v3/account"]


def test_binance_refusing_the_signature_is_auth_failed_and_never_quotes_the_keys() -> None:
    factory, _ = recorded_binance({"code": -1022,
                                   "msg": "Signature for this request is not valid."}, 400)
    with pytest.raises(DomainError) as refused:
        CcxtExchangeConnector(client_factory=factory).verify("binance", True, KEYS)
    assert refused.value.code == "EXCHANGE_AUTH_FAILED"
    assert KEYS.api_key not in str(refused.value) and KEYS.secret not in str(refused.value)


def test_binance_refusing_the_key_for_this_action_is_auth_failed() -> None:
    factory, _ = recorded_binance({"code": -2015, "msg": "Invalid API-key, IP, or "
                                   "permissions for action."}, 401)
    with pytest.raises(DomainError) as refused:
        CcxtExchangeConnector(client_factory=factory).verify("binance", True, KEYS)
    assert refused.value.code == "EXCHANGE_AUTH_FAILED"


def test_a_closed_local_port_as_sandbox_host_is_unavailable(closed_port: int) -> None:
    connector = CcxtExchangeConnector(sandbox_host=f"http://127.0.0.1:{closed_port}",
                                      timeout_ms=2000)
    with pytest.raises(DomainError) as refused:
        connector.verify("binance", True, KEYS)
    assert refused.value.code == "EXCHANGE_UNAVAILABLE"
    assert f"127.0.0.1:{closed_port}" in refused.value.message


def test_an_exchange_ccxt_does_not_know_is_not_supported() -> None:
    with pytest.raises(DomainError) as refused:
        CcxtExchangeConnector().verify("no-such-exchange", True, KEYS)
    assert refused.value.code == "EXCHANGE_NOT_SUPPORTED"


def test_an_exchange_without_a_sandbox_is_not_supported_as_one() -> None:
    with pytest.raises(DomainError) as refused:  # ccxt knows no testnet of bitstamp
        CcxtExchangeConnector().verify("bitstamp", True, KEYS)
    assert refused.value.code == "EXCHANGE_NOT_SUPPORTED"
