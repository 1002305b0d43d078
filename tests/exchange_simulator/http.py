"""The simulator's HTTP side: Binance's spot REST API (the part ccxt's ``binance`` class uses
for spot trading) on 127.0.0.1, plus a control API for tests under ``/_simulator/``.

Public: ``GET /api/v3/ping|time|exchangeInfo|klines|ticker/price``. Signed: ``GET
/api/v3/account``, ``POST|GET|DELETE /api/v3/order``, ``GET|DELETE /api/v3/openOrders``,
``GET /api/v3/allOrders``, ``GET /api/v3/myTrades``. ``klines`` serves only the candle
file's own interval (``1m`` for the shipped data); others get -1120 "Invalid interval.".

It is a fake standing at the network edge, not Binance: answers follow Binance's shapes and
error format (``{"code": -2010, "msg": "..."}`` with Binance's HTTP statuses) closely enough
for ccxt to parse them and to raise the exceptions it raises for the real exchange.

Two listening sockets: the API (which :meth:`SimulatorServer.go_down` closes, so connections
are refused) and a control socket that stays up, so a test can bring the API back. The API
socket also serves ``/_simulator/`` while up (plumbing and faults: :mod:`.handler`).

Signed endpoints check ``X-MBX-APIKEY`` and the HMAC-SHA256 ``signature`` of the query string
and body with the secret, as Binance does; ``timestamp`` loosely (:func:`_check_timestamp`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import traceback
from collections.abc import Callable
from http.server import HTTPServer
from typing import Any
from urllib.parse import parse_qsl

from tests.exchange_simulator.faults import Faults
from tests.exchange_simulator.handler import HOST, ORDER_PATH, close, serve
from tests.exchange_simulator.market import Market, fmt
from tests.exchange_simulator.matching import Matching
from tests.exchange_simulator.records import BinanceError, missing

_PUBLIC = {("GET", "/api/v3/ping"), ("GET", "/api/v3/time"), ("GET", "/api/v3/exchangeInfo"),
           ("GET", "/api/v3/klines"), ("GET", "/api/v3/ticker/price")}

Answer = tuple[int, Any, dict[str, str]]


class SimulatorServer:
    """The exchange simulator's two HTTP servers around one :class:`Matching`."""

    def __init__(self, matching: Matching, api_key: str, secret: str) -> None:
        self.matching, self.api_key, self.secret = matching, api_key, secret
        self.faults = Faults()
        self.port = 0
        self._api: HTTPServer | None = None
        self._control: HTTPServer | None = None
        self._state_lock = threading.Lock()
        self._up_timer: threading.Timer | None = None
        # every signed request's ``timestamp`` (its nonce), in the order they arrived; with
        # ``strict_nonces`` one not above the last is refused (as an exchange without a
        # receive window refuses it: Kraken's "Invalid nonce"), counted in ``nonces_refused``
        self.nonces: list[int] = []
        self.strict_nonces = False
        self.nonces_refused = 0
        self._nonce_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def control_url(self) -> str:
        assert self._control is not None, "start() the simulator first"
        return f"http://{HOST}:{self._control.server_address[1]}"

    @property
    def is_down(self) -> bool:
        return self._api is None

    def start(self, port: int = 0, control_port: int = 0) -> None:
        self._control = serve(self, control_port, control_only=True)
        api = serve(self, port, control_only=False)
        self.port, self._api = api.server_address[1], api

    def stop(self) -> None:
        self.go_down()
        with self._state_lock:
            if self._control is not None:
                close(self._control)
                self._control = None

    def go_down(self, seconds: float | None = None) -> None:
        """Close the API's listening socket (connections are refused) for ``seconds``, or
        until :meth:`come_up`."""
        with self._state_lock:
            if self._up_timer is not None:
                self._up_timer.cancel()
                self._up_timer = None
            if self._api is not None:
                close(self._api)
                self._api = None
            if seconds is not None:
                self._up_timer = threading.Timer(seconds, self.come_up)
                self._up_timer.daemon = True
                self._up_timer.start()

    def come_up(self) -> None:
        with self._state_lock:
            if self._api is None and self._control is not None:
                self._api = serve(self, self.port, control_only=False)

    # --- the Binance API ----------------------------------------------------------------

    def answer(self, method: str, path: str, query: str, body: str,
               headers: dict[str, str]) -> Answer:
        route = _ROUTES.get((method, path))
        if route is None:
            return 404, {"code": -1000, "msg": f"The simulator has no {method} {path}."}, {}
        try:
            if (method, path) in _PUBLIC:
                params = dict(parse_qsl(query, keep_blank_values=True))
            else:
                params = self._authenticate(query, body, headers)
            return 200, route(self, params), {}
        except BinanceError as error:
            return error.status, {"code": error.code, "msg": error.msg}, {}
        except Exception:  # a bug of the simulator: say so loudly, answer as Binance would
            traceback.print_exc()
            return 500, {"code": -1000, "msg": "An unknown error occurred while processing "
                                               "the request."}, {}

    def _authenticate(self, query: str, body: str, headers: dict[str, str]) -> dict[str, str]:
        key = headers.get("x-mbx-apikey")
        if not key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signed, found, signature = (query + body).rpartition("&signature=")
        if not found:
            raise missing("signature")
        expected = hmac.new(self.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(signed, keep_blank_values=True))
        _check_timestamp(params, self.matching.now_ms())
        self._check_nonce(int(params["timestamp"]))
        return params

    def _check_nonce(self, nonce: int) -> None:
        with self._nonce_lock:
            if self.strict_nonces and self.nonces and nonce <= self.nonces[-1]:
                self.nonces_refused += 1
                raise BinanceError(400, -1021, "Invalid nonce: not above the last one.")
            self.nonces.append(nonce)

    # --- endpoints ----------------------------------------------------------------------

    def _time(self, params: dict[str, str]) -> dict[str, object]:
        return {"serverTime": self.matching.now_ms()}

    def _exchange_info(self, params: dict[str, str]) -> dict[str, object]:
        wanted = [params["symbol"]] if "symbol" in params else (
            json.loads(params["symbols"]) if "symbols" in params else None)
        markets = [self.matching.market(s) for s in wanted] if wanted else list(
            self.matching.markets.values())
        return {"timezone": "UTC", "serverTime": self.matching.now_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                     "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                     "limit": 100},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                     "limit": 200000}],
                "exchangeFilters": [], "symbols": [_symbol_info(m) for m in markets]}

    def _klines(self, params: dict[str, str]) -> list[list[object]]:
        market = self.matching.market(params.get("symbol"))
        if not params.get("interval"):
            raise missing("interval")
        if params["interval"] != market.interval:
            raise BinanceError(400, -1120, "Invalid interval.")
        limit = _int(params, "limit", 500)
        if not 1 <= limit <= 1000:
            raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        start, end = _int(params, "startTime", None), _int(params, "endTime", None)
        return market.klines(self.matching.catch_up(), start, end, limit)

    def _ticker_price(self, params: dict[str, str]) -> dict[str, str]:
        market = self.matching.market(params.get("symbol"))
        return {"symbol": market.symbol, "price": fmt(market.price_at(self.matching.now_ms()))}

    def _account(self, params: dict[str, str]) -> dict[str, object]:
        rows = [{"asset": asset, "free": fmt(free), "locked": fmt(locked)}
                for asset, (free, locked) in self.matching.balances().items()
                if not (params.get("omitZeroBalances") == "true" and not free + locked)]
        rate = int(self.matching.fee_rate * 10_000)
        rates = {k: fmt(self.matching.fee_rate) for k in ("maker", "taker", "buyer", "seller")}
        return {"makerCommission": rate, "takerCommission": rate, "buyerCommission": 0,
                "sellerCommission": 0, "commissionRates": rates, "canTrade": True,
                "canWithdraw": False, "canDeposit": False, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False,
                "updateTime": self.matching.now_ms(), "accountType": "SPOT", "balances": rows,
                "permissions": ["SPOT"], "uid": 1}

    def _new_order(self, params: dict[str, str]) -> dict[str, object]:
        order = self.matching.create_order(params)
        ack = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
               "clientOrderId": order.client_order_id, "transactTime": order.time_ms}
        kind = params.get("newOrderRespType", "FULL")
        if kind == "ACK":
            return ack
        result = {**ack, **_without(order.as_binance(), "time", "updateTime", "isWorking",
                                    "stopPrice", "icebergQty")}
        if kind == "FULL":
            result["fills"] = [{"price": fmt(t.price), "qty": fmt(t.qty),
                                "commission": fmt(t.commission),
                                "commissionAsset": t.commission_asset, "tradeId": t.trade_id}
                               for t in self.matching.trades if t.order_id == order.order_id]
        return result

    def _cancel_order(self, params: dict[str, str]) -> dict[str, object]:
        order = self.matching.cancel_order(params)
        fields = _without(order.as_binance(), "time", "updateTime", "isWorking", "workingTime",
                          "stopPrice", "icebergQty", "clientOrderId")
        return {**fields, "origClientOrderId": order.client_order_id,
                "clientOrderId": params.get("newClientOrderId", f"cancel{order.order_id}"),
                "transactTime": order.update_ms}

    def _cancel_open_orders(self, params: dict[str, str]) -> list[dict[str, object]]:
        symbol = self.matching.market(params.get("symbol")).symbol
        return [self._cancel_order({"symbol": symbol, "orderId": str(order.order_id)})
                for order in self.matching.open_orders(symbol)]

    def _get_order(self, params: dict[str, str]) -> dict[str, object]:
        return self.matching.get_order(params).as_binance()

    def _all_orders(self, params: dict[str, str]) -> list[dict[str, object]]:
        return [o.as_binance() for o in self.matching.all_orders(params)]

    def _open_orders(self, params: dict[str, str]) -> list[dict[str, object]]:
        return [o.as_binance() for o in self.matching.open_orders(params.get("symbol"))]

    def _my_trades(self, params: dict[str, str]) -> list[dict[str, object]]:
        return [t.as_binance() for t in self.matching.my_trades(params)]


_ROUTES: dict[tuple[str, str], Callable[[SimulatorServer, dict[str, str]], Any]] = {
    ("GET", "/api/v3/ping"): lambda server, params: {},
    ("GET", "/api/v3/time"): SimulatorServer._time,
    ("GET", "/api/v3/exchangeInfo"): SimulatorServer._exchange_info,
    ("GET", "/api/v3/klines"): SimulatorServer._klines,
    ("GET", "/api/v3/ticker/price"): SimulatorServer._ticker_price,
    ("GET", "/api/v3/account"): SimulatorServer._account,
    ("POST", ORDER_PATH): SimulatorServer._new_order,
    ("DELETE", ORDER_PATH): SimulatorServer._cancel_order,
    ("GET", ORDER_PATH): SimulatorServer._get_order,
    ("GET", "/api/v3/openOrders"): SimulatorServer._open_orders,
    ("DELETE", "/api/v3/openOrders"): SimulatorServer._cancel_open_orders,
    ("GET", "/api/v3/allOrders"): SimulatorServer._all_orders,
    ("GET", "/api/v3/myTrades"): SimulatorServer._my_trades,
}


def _symbol_info(market: Market) -> dict[str, object]:
    f = market.filters
    return {
        "symbol": market.symbol, "status": "TRADING", "baseAsset": market.base,
        "baseAssetPrecision": 8, "quoteAsset": market.quote, "quotePrecision": 8,
        "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
        "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
        "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt(f.min_price or f.tick_size),
             "maxPrice": fmt(f.max_price), "tickSize": fmt(f.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": fmt(f.min_qty), "maxQty": fmt(f.max_qty),
             "stepSize": fmt(f.step_size)},
            {"filterType": "NOTIONAL", "minNotional": fmt(f.min_notional),
             "applyMinToMarket": True, "maxNotional": fmt(f.max_notional),
             "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _without(row: dict[str, object], *keys: str) -> dict[str, object]:
    return {key: value for key, value in row.items() if key not in keys}


def _int(params: dict[str, str], name: str, default: int | None) -> Any:
    if name not in params:
        return default
    try:
        return int(params[name])
    except ValueError:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; "
                                       "legal range is '^[0-9]{1,20}$'.") from None


def _check_timestamp(params: dict[str, str], simulated_now: int) -> None:
    """Loosely: the timestamp must lie near the wall clock or the simulated one (a client
    adjusting for the time difference sends the latter): at most 1 s ahead, and at most
    ``recvWindow`` behind, counting at least a minute so that a request a timeout fault held
    is still carried out."""
    timestamp = _int(params, "timestamp", None)
    if timestamp is None:
        raise missing("timestamp")
    window = _int(params, "recvWindow", 5000)
    if not 0 < window <= 60_000:
        raise BinanceError(400, -1131, "recvWindow must be less than 60000")
    behind = max(window, 60_000)
    if not any(now - behind <= timestamp <= now + 1000
               for now in (int(time.time() * 1000), simulated_now)):
        raise BinanceError(400, -1021, "Timestamp for this request is outside of the "
                                       "recvWindow.")
