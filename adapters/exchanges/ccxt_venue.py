"""CcxtExchange: the exchange port on a real exchange, through a ccxt client.

What it guarantees, whatever the exchange answers:
- No ccxt exception leaves it. A refusal of an order (funds, limits, keys, permissions)
  is an ``ExchangeOrder`` with status ``rejected`` and the reason ``"CODE: text"``; any
  other call raises a ``DomainError`` with the code (ccxt_errors.translate).
- Transient failures (network, timeouts, ``RateLimitExceeded``, ``DDoSProtection``) are
  retried with exponential backoff and full jitter, on top of ccxt's own rate limiter.
- A create is sent with a client order id derived from the engine's (client_ids), and is
  never simply sent again: after a failure that leaves its fate unknown (a timeout), the
  order is first looked up by that id; only an exchange that does not know it gets the
  same request (same id) again. A "duplicate id" answer fetches the existing order.
- Amounts are truncated and prices rounded with ccxt's helpers, and minimums are checked
  before anything is sent (ccxt_rules). Fills come from the exchange's trades with their
  real fee; money is Decimal built from the exchange's text (see ccxt_values).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from adapters.exchanges import ccxt_errors
from adapters.exchanges.ccxt_client import (
    ApiCredentials,
    isolated_decimals,
    load_markets,
    open_client,
)
from adapters.exchanges.ccxt_lookup import ClientIdLookup
from adapters.exchanges.ccxt_rules import round_amount, round_price, rules_of
from adapters.exchanges.ccxt_values import (
    ZERO,
    balances_from,
    decimal_from,
    exchange_order_from,
    fee_of,
    filled_of,
    trade_from,
)
from adapters.exchanges.client_ids import client_order_id_for, order_id_from
from domain.errors import DomainError
from domain.market_rules import minimum_problem
from domain.orders import OrderStatus, OrderType
from domain.ports import Balance, Exchange, ExchangeOrder, MarketRules, OrderRequest, Trade

T = TypeVar("T")
DEFAULT_ATTEMPTS = 5


class CcxtExchange(Exchange):
    """One exchange account. ``client`` is a ccxt client (``open_client``); ``sleep``,
    ``monotonic`` and ``rng`` are injected so tests retry without waiting, with known delays."""

    def __init__(self, client: Any, *, sandbox: bool = False, sandbox_host: str | None = None,
                 attempts: int = DEFAULT_ATTEMPTS, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, resend_unknown: bool = True):
        """``resend_unknown=False``: a create whose request may have reached the exchange
        (timed out, answer lost) and that the exchange does not know once the request's
        validity window has passed is reported ``LOST`` instead of being sent again with
        the same client id: each client id reaches the exchange at most once, and the
        engine decides anew (with a new id). The live runner uses this."""
        # Exact numbers: ccxt then returns the exchange's decimal text instead of floats.
        client.number = str
        client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        self.client = client
        self.exchange_id: str = client.id
        self._sandbox, self._sandbox_host = sandbox, sandbox_host
        self._attempts = max(1, attempts)
        self._sleep, self._monotonic, self._rng = sleep, monotonic, rng
        self._resend_unknown = resend_unknown
        self._markets_ready = False
        self._lookup = ClientIdLookup(client, self._call)

    @classmethod
    def open(cls, exchange_id: str, *, sandbox: bool, credentials: ApiCredentials | None = None,
             sandbox_host: str | None = None, timeout_ms: int = 10_000,
             **kwargs: Any) -> CcxtExchange:
        client = open_client(exchange_id, sandbox=sandbox, credentials=credentials,
                             sandbox_host=sandbox_host, timeout_ms=timeout_ms)
        return cls(client, sandbox=sandbox, sandbox_host=sandbox_host, **kwargs)

    # --- the port -------------------------------------------------------------------------

    def create_order(self, request: OrderRequest) -> ExchangeOrder:
        import ccxt

        engine_id = request.client_order_id
        try:
            self._ensure_markets()
            self.client.market(request.pair)
        except ccxt.BaseError as error:  # BadSymbol: a pair the exchange does not list
            return self._rejected(request, _reason(error, "placing an order"))
        except DomainError as error:
            if error.code == "EXCHANGE_UNAVAILABLE":
                raise  # not a refusal: nothing is known about the market yet
            return self._rejected(request, f"{error.code}: {error.message}")
        amount = round_amount(self.client, request.pair, request.amount)
        price = (round_price(self.client, request.pair, request.price)
                 if request.price is not None else None)
        reference = price if price is not None else self._reference_price(request.pair)
        problem = minimum_problem(self.market_rules(request.pair), request.pair, amount,
                                  reference)
        if problem:
            return self._rejected(request, problem)
        exchange_cid = client_order_id_for(engine_id, self.exchange_id)
        for attempt in range(self._attempts):
            sent_at = self._monotonic()
            sent = self._send_create(request, amount, price, exchange_cid)
            if isinstance(sent, ExchangeOrder):
                return sent
            if not _refused_unplaced(sent):  # its fate is unknown: ask before sending again
                found = self._look_up_after(sent_at, engine_id, request.pair)
                if found is not None:
                    return found
                if not self._resend_unknown:
                    return ExchangeOrder("", engine_id, OrderStatus.LOST, reason=(
                        "ORDER_NOT_RECEIVED: the request failed and the exchange does not "
                        "know the order after its validity window; not sent again"))
            if attempt + 1 < self._attempts:
                self._sleep(ccxt_errors.backoff_seconds(attempt, rng=self._rng))
        raise ccxt_errors.translate(sent, "placing an order")

    def _look_up_after(self, sent_at: float, engine_id: str, pair: str) -> ExchangeOrder | None:
        """The order a failed create may have placed, or None once it can no longer arrive:
        an exchange refuses a request older than its validity window (Binance's
        ``recvWindow``, signed into it), so "unknown" is only believed after that."""
        found = self.fetch_order_by_client_id(engine_id, pair)
        if found is not None:
            return found
        wait = self._validity_seconds() - (self._monotonic() - sent_at)
        if wait <= 0:
            return None
        self._sleep(wait)
        return self.fetch_order_by_client_id(engine_id, pair)

    def _validity_seconds(self) -> float:
        window_ms = self.client.options.get("recvWindow") or self.client.timeout
        return float(window_ms) / 1000

    def cancel_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder:
        self._ensure_markets()
        try:
            self._call("cancelling an order",
                       lambda: self.client.cancel_order(exchange_order_id, pair))
        except DomainError as error:
            if error.code != "ORDER_NOT_FOUND":
                raise
            # Already filled or cancelled: the order's final state says which.
        return self.fetch_order(exchange_order_id, pair)

    def fetch_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder:
        self._ensure_markets()
        order = self._call("fetching an order", lambda: self.client.fetch_order(
            exchange_order_id, pair, self._lookup.fetch_order_params()))
        return self._to_port(order, pair)

    def fetch_balance(self) -> dict[str, Balance]:
        self._ensure_markets()
        return balances_from(self._call("fetching balances", self.client.fetch_balance))

    def fetch_order_by_client_id(self, client_order_id: str, pair: str) -> ExchangeOrder | None:
        self._ensure_markets()
        exchange_cid = (client_order_id if order_id_from(client_order_id, self.exchange_id)
                        else client_order_id_for(client_order_id, self.exchange_id))
        order = self._lookup.find(exchange_cid, pair)
        return None if order is None else self._to_port(order, pair)

    def fetch_open_orders(self, pair: str | None = None) -> list[ExchangeOrder]:
        self._ensure_markets()
        orders = self._call("listing open orders", lambda: self.client.fetch_open_orders(pair))
        return [self._to_port(order, order.get("symbol") or pair) for order in orders]

    def market_rules(self, pair: str) -> MarketRules | None:
        self._ensure_markets()
        market = (self.client.markets or {}).get(pair)
        if market is None:
            raise DomainError(f"{self.exchange_id} does not list {pair}", code="PAIR_NOT_TRADED",
                              field="pair")
        return rules_of(market, self.client.precisionMode)

    # --- placing --------------------------------------------------------------------------

    def _send_create(self, request: OrderRequest, amount: Decimal, price: Decimal | None,
                     exchange_cid: str) -> ExchangeOrder | BaseException:
        """One create request: the order as the exchange took it, a rejection, or the
        transient error after which its fate is unknown (returned, not raised)."""
        import ccxt

        params: dict[str, Any] = {"clientOrderId": exchange_cid}
        kind = request.type.value
        if request.type is OrderType.STOP:  # a stop-market: triggers at the order's price
            kind, params["triggerPrice"] = "market", str(price)
            price = None
        try:
            with isolated_decimals():
                order = self.client.create_order(
                    request.pair, kind, request.side.value, str(amount),
                    None if price is None else str(price), params)
        except ccxt.NetworkError as error:
            return error
        except ccxt.BaseError as error:
            if _is_duplicate(error):  # placed before (an earlier attempt, or a restart)
                found = self.fetch_order_by_client_id(exchange_cid, request.pair)
                if found is not None:
                    return found
            return self._rejected(request, _reason(error, "placing an order"))
        try:
            return self._to_port(order, request.pair, request.client_order_id)
        except DomainError:
            # Placed, but its fills could not be read now: it is on the exchange, and its
            # fills come with the next fetch_order (reconciliation asks).
            return ExchangeOrder(str(order["id"]), request.client_order_id, OrderStatus.ACCEPTED)

    def _reference_price(self, pair: str) -> Decimal | None:
        """The last price, to check a market order's notional; None when not known (the
        exchange then judges the minimum itself). One attempt: a check, not the order."""
        import ccxt

        try:
            with isolated_decimals():
                candles = self.client.fetch_ohlcv(pair, "1m", None, 1)
            return decimal_from(candles[-1][4], "close") if candles else None
        except (ccxt.BaseError, DomainError, IndexError, TypeError):
            return None

    def _rejected(self, request: OrderRequest, reason: str) -> ExchangeOrder:
        return ExchangeOrder("", request.client_order_id, OrderStatus.REJECTED, (), reason)

    # --- reading --------------------------------------------------------------------------

    def _to_port(self, order: dict[str, Any], pair: str,
                 engine_id: str | None = None) -> ExchangeOrder:
        if engine_id is None:
            uid = order_id_from(order.get("clientOrderId"), self.exchange_id)
            engine_id = uid.hex if uid else (order.get("clientOrderId") or "")
        trades = self._trades_of(order, pair) if filled_of(order) > ZERO else ()
        return exchange_order_from(order, engine_id, trades)

    def _trades_of(self, order: dict[str, Any], pair: str) -> tuple[Trade, ...]:
        order_id = str(order["id"])
        if self.client.has.get("fetchOrderTrades"):
            raw = self._call("fetching an order's fills",
                             lambda: self.client.fetch_order_trades(order_id, pair))
        else:
            raw = self._call("fetching fills", lambda: self.client.fetch_my_trades(
                pair, order.get("timestamp")))
        market = self.client.market(pair)
        return tuple(self._trade(t, market) for t in raw if str(t.get("order")) == order_id)

    def _trade(self, raw: dict[str, Any], market: dict[str, Any]) -> Trade:
        fee, currency = fee_of(raw)
        quote, base = market["quote"], market["base"]
        if fee and currency not in (None, quote, base):
            rate = self._conversion_rate(currency, quote, raw.get("timestamp"))
            return trade_from(raw, quote, None if rate is None else fee * rate, rate)
        return trade_from(raw, quote)

    def _conversion_rate(self, asset: str, quote: str, at_ms: int | None) -> Decimal | None:
        """Quote per unit of ``asset`` (BNB) when the trade happened: the close of the
        1-minute candle holding the trade, else the last price; None if neither is known."""
        import ccxt

        symbol = f"{asset}/{quote}"
        if symbol not in (self.client.markets or {}):
            return None
        try:
            with isolated_decimals():
                if at_ms is not None and self.client.has.get("fetchOHLCV"):
                    minute = int(at_ms) // 60_000 * 60_000
                    candles = self.client.fetch_ohlcv(symbol, "1m", minute, 1)
                    if candles and int(candles[0][0]) == minute:
                        return decimal_from(candles[0][4], "rate")
                ticker = self.client.fetch_ticker(symbol)
            return decimal_from(ticker.get("last"), "rate")
        except (ccxt.BaseError, DomainError):
            return None

    # --- plumbing -------------------------------------------------------------------------

    def _ensure_markets(self) -> None:
        if self._markets_ready:
            return
        if not self.client.markets:  # shared by every client of this exchange (cached)
            # Loaded in ccxt's default number mode: the cache hands these markets to other
            # clients (the feed, dca-plan) that expect ccxt's usual floats. Ours read them
            # through decimal_from, exact for the steps and minimums exchanges publish.
            self.client.number = float
            try:
                self._call("loading markets", lambda: load_markets(
                    self.client, sandbox=self._sandbox, sandbox_host=self._sandbox_host))
            finally:
                self.client.number = str
        self._markets_ready = True

    def _call(self, doing: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried on transient errors; any ccxt error becomes a DomainError."""
        import ccxt

        for attempt in range(self._attempts):
            try:
                with isolated_decimals():
                    return fn()
            except ccxt.BaseError as error:
                if ccxt_errors.is_transient(error) and attempt + 1 < self._attempts:
                    self._sleep(ccxt_errors.backoff_seconds(attempt, rng=self._rng))
                    continue
                raise ccxt_errors.translate(error, doing) from None
        raise AssertionError("unreachable")


def _refused_unplaced(error: BaseException) -> bool:
    """Throttled (429/418): the exchange answered and placed nothing; no lookup needed."""
    import ccxt

    return isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded)


def _is_duplicate(error: BaseException) -> bool:
    """The exchange says the client id was used: ccxt's DuplicateOrderId, or an order
    refusal whose text says so (Binance spot answers -2010 "Duplicate order sent.")."""
    import ccxt

    return isinstance(error, ccxt.DuplicateOrderId) or (
        isinstance(error, ccxt.InvalidOrder) and "duplicate" in str(error).lower())


def _reason(error: BaseException, doing: str) -> str:
    translated = ccxt_errors.translate(error, doing)
    return f"{translated.code}: {ccxt_errors.safe_reason(error)}"
