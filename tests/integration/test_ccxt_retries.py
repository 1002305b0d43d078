"""Failures at the network edge, under the real ccxt binance class: a create that times out
is looked up by its client id before anything is sent again; throttling and outages are
retried with backoff; refusals become named rejections; no ccxt exception gets out.

Exchange errors are made by ccxt's own ``handle_errors`` from Binance's error bodies;
network failures are the exceptions ccxt's ``fetch`` raises (``RequestTimeout``, ...)."""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.exchanges.ccxt_venue import CcxtExchange
from domain.errors import DomainError
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import OrderRequest
from tests.ccxt_replay import FakeHttp, offline_client, query_of, recorded_case

ORDER_ID = UUID("5a1d5a1d-0000-4000-8000-00000000c0de")
OURS = "tt" + ORDER_ID.hex
LTC_BUY = OrderRequest(ORDER_ID.hex, "LTC/USDT", OrderSide.BUY, OrderType.LIMIT,
                       Decimal("0.2"), Decimal("50"))


class Venue:
    def __init__(self, attempts: int = 4):
        import random

        self.client = offline_client("binance")
        self.http = FakeHttp(self.client)
        self.sleeps: list[float] = []
        self.exchange = CcxtExchange(self.client, attempts=attempts, sleep=self.sleeps.append,
                                     rng=random.Random(7))

    def error(self, code: int, msg: str) -> Exception:
        """The exception ccxt raises for Binance's error answer ``{"code", "msg"}``."""
        body = {"code": code, "msg": msg}
        try:
            self.client.handle_errors(400, "Bad Request", "https://api.binance.com/api/v3/order",
                                      "POST", {}, json.dumps(body), body, {}, "")
        except Exception as raised:  # the exception ccxt maps the body to
            return raised
        raise AssertionError(f"ccxt raised nothing for {body}")


def in_turn(*answers):
    """An answer that gives each of ``answers`` in turn (the last one again after)."""
    given = iter(answers)
    last = [None]

    def answer(url, body):
        last[0] = next(given, last[0])
        return last[0]
    return answer


def recorded_order(**changes):
    """Binance's recorded answer for a resting order, re-keyed to ours."""
    order = recorded_case("binance", "fetchOpenOrders", "Fetch spot open orders")["httpResponse"][0]
    order.update(clientOrderId=OURS, **changes)
    return order


def recorded_fill():
    """The recorded closed order and its recorded trade, both re-keyed to our order."""
    order = recorded_case("binance", "fetchOrder", "Fetch spot closed order")["httpResponse"]
    order["clientOrderId"] = OURS
    trades = recorded_case("binance", "fetchMyTrades", "Spot private trade")["httpResponse"]
    trades[0]["orderId"] = order["orderId"]
    return order, trades


def test_a_create_that_timed_out_is_looked_up_not_sent_again():
    import ccxt

    venue = Venue()
    order, trades = recorded_fill()
    looked_up = []
    venue.http.on("POST", "/api/v3/order", ccxt.RequestTimeout("binance POST timed out"))
    venue.http.on("GET", "/api/v3/order",
                  lambda url, body: looked_up.append(query_of(url)) or order)
    venue.http.on("GET", "/api/v3/myTrades", trades)
    result = venue.exchange.create_order(LTC_BUY)
    assert venue.http.count("POST", "/api/v3/order") == 1
    assert looked_up[0]["origClientOrderId"] == OURS
    assert result.status is OrderStatus.FILLED
    assert result.client_order_id == ORDER_ID.hex
    assert [t.trade_id for t in result.trades] == ["309520010"]


def test_a_create_the_exchange_never_saw_is_sent_again_with_the_same_id():
    import ccxt

    venue = Venue()
    created = recorded_case("binance", "createOrder", "spot +selfTradePrevention +iceberg")
    created["httpResponse"].update(symbol="LTCUSDT", clientOrderId=OURS)
    venue.http.on("POST", "/api/v3/order",
                  in_turn(ccxt.RequestTimeout("timed out"), created["httpResponse"]))
    venue.http.on("GET", "/api/v3/order", venue.error(-2013, "Order does not exist."))
    result = venue.exchange.create_order(LTC_BUY)
    posts = [query_of(url, body) for (method, url), body
             in zip(venue.http.sent, venue.http.bodies, strict=True) if method == "POST"]
    assert [p["newClientOrderId"] for p in posts] == [OURS, OURS]
    assert (result.status, result.exchange_order_id) == (OrderStatus.ACCEPTED, "9780331417")
    # Looked up at once, and again once the first request could no longer arrive: Binance
    # refuses a request older than its signed recvWindow (ccxt sends 10 s).
    assert venue.http.count("GET", "/api/v3/order") == 2
    window, backoff = venue.sleeps
    assert 9.9 < window <= 10 and 0 <= backoff <= 0.5


def test_a_duplicate_id_answer_fetches_the_existing_order():
    venue = Venue()
    venue.http.on("POST", "/api/v3/order", venue.error(-2010, "Duplicate order sent."))
    venue.http.on("GET", "/api/v3/order", recorded_order())
    result = venue.exchange.create_order(LTC_BUY)
    assert (result.status, result.exchange_order_id) == (OrderStatus.ACCEPTED, "3811057334")
    assert result.client_order_id == ORDER_ID.hex
    assert venue.http.count("POST", "/api/v3/order") == 1


@pytest.mark.parametrize(("code", "msg", "named"), [
    (-2010, "Account has insufficient balance for requested action.", "INSUFFICIENT_FUNDS"),
    (-2015, "Invalid API-key, IP, or permissions for action.", "EXCHANGE_AUTH_FAILED"),
])
def test_an_order_refusal_is_a_named_rejection(code, msg, named):
    venue = Venue()
    venue.http.on("POST", "/api/v3/order", venue.error(code, msg))
    result = venue.exchange.create_order(LTC_BUY)
    assert result.status is OrderStatus.REJECTED
    assert result.reason.startswith(f"{named}: ") and msg.split()[0] in result.reason
    assert venue.http.count("GET", "/api/v3/order") == 0  # a refusal is not looked up
    assert venue.sleeps == []


def test_wrong_keys_on_a_balance_are_a_domain_error():
    venue = Venue()
    venue.http.on("GET", "/api/v3/account",
                  venue.error(-2015, "Invalid API-key, IP, or permissions for action."))
    with pytest.raises(DomainError) as refused:
        venue.exchange.fetch_balance()
    assert refused.value.code == "EXCHANGE_AUTH_FAILED"
    assert "secretsecret" not in str(refused.value)


def test_throttling_is_retried_with_backoff():
    import ccxt

    venue = Venue()
    balance = recorded_case("binance", "fetchBalance", "Spot balance")["httpResponse"]
    venue.http.on("GET", "/api/v3/account",
                  in_turn(ccxt.RateLimitExceeded("429"), ccxt.DDoSProtection("418"), balance))
    assert venue.exchange.fetch_balance()["LTC"].free == Decimal("0.919741")
    assert len(venue.sleeps) == 2
    assert 0 <= venue.sleeps[0] <= 0.5 and 0 <= venue.sleeps[1] <= 1.0


def test_an_exchange_that_stays_away_is_unavailable_after_every_attempt():
    import ccxt

    venue = Venue(attempts=3)
    venue.http.on("GET", "/api/v3/account", ccxt.ExchangeNotAvailable("502 Bad Gateway"))
    with pytest.raises(DomainError) as failed:
        venue.exchange.fetch_balance()
    assert failed.value.code == "EXCHANGE_UNAVAILABLE"
    assert not isinstance(failed.value, ccxt.BaseError)
    assert venue.http.count("GET", "/api/v3/account") == 3 and len(venue.sleeps) == 2


def test_a_create_whose_fate_stays_unknown_is_unavailable_never_rejected():
    """Rejecting it would let the engine think nothing was placed; reconciliation decides."""
    import ccxt

    venue = Venue(attempts=2)
    venue.http.on("POST", "/api/v3/order", ccxt.RequestTimeout("timed out"))
    venue.http.on("GET", "/api/v3/order", venue.error(-2013, "Order does not exist."))
    with pytest.raises(DomainError) as unknown:
        venue.exchange.create_order(LTC_BUY)
    assert unknown.value.code == "EXCHANGE_UNAVAILABLE"
    assert venue.http.count("POST", "/api/v3/order") == 2
    assert venue.http.count("GET", "/api/v3/order") == 4  # twice after each attempt


def test_a_throttled_create_is_sent_again_without_a_lookup():
    """429/418: the exchange answered and placed nothing."""
    import ccxt

    venue = Venue()
    venue.http.on("POST", "/api/v3/order",
                  in_turn(ccxt.RateLimitExceeded("429"), recorded_order()))
    result = venue.exchange.create_order(LTC_BUY)
    assert result.status is OrderStatus.ACCEPTED
    assert venue.http.count("POST", "/api/v3/order") == 2
    assert venue.http.count("GET", "/api/v3/order") == 0 and len(venue.sleeps) == 1
