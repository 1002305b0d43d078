"""The simulator's order book, fills, balances and ledger: what Binance's matching engine and
account service would do for one account, against the candle files instead of other traders.

- Orders fill whole (no partial fills). A resting limit order fills on the first candle that
  opens at or after its placement and trades through its price: at its price, or at the candle's
  open when the candle opened beyond it (gapped through). Such a fill happens when that candle
  closes, and its time is the candle's close time (open + interval - 1).
- A market order, or a limit order priced through the current price (a buy at or above it, a
  sell at or below), fills at once at the current price (:meth:`Market.price_at`).
- Fees (``fee_rate``, default Binance's 0.1 %): in ``"binance"`` mode a buy pays in the base
  asset and a sell in the quote asset, as Binance spot does without BNB; in ``"quote"`` mode
  both pay in the quote asset. Commissions are rounded half-up to 8 decimals.
- Balances are Binance's free and locked: a limit order locks its cost (a buy: price × qty,
  plus the fee in quote mode; a sell: qty) until it fills or is cancelled.
- Every client order id a create request carried is recorded with its outcome, so tests can
  prove none reached the simulator twice.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from tests.exchange_simulator.market import Market, SimulatedClock
from tests.exchange_simulator.records import (
    Account,
    Attempt,
    BinanceError,
    SimOrder,
    SimTrade,
    choice,
    illegal,
    missing,
    number,
)

_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_COMMISSION = Decimal("0.00000001")
FEE_MODES = ("binance", "quote")


class Matching:
    """Orders, trades and balances of the simulator's one account. Every public method
    first fills what the candles closed since the last call (:meth:`catch_up`)."""

    def __init__(self, markets: dict[str, Market], clock: SimulatedClock,
                 balances: dict[str, Decimal], fee_rate: Decimal = Decimal("0.001"),
                 fee_mode: str = "binance") -> None:
        if fee_mode not in FEE_MODES:
            raise ValueError(f"fee_mode must be one of {FEE_MODES}")
        self.markets, self.clock = markets, clock
        self.fee_rate, self.fee_mode = Decimal(fee_rate), fee_mode
        self.lock = threading.RLock()
        self.initial_balances = {asset: Decimal(amount) for asset, amount in balances.items()}
        self.account = Account(free=dict(self.initial_balances))
        self.orders: dict[int, SimOrder] = {}
        self.by_client_id: dict[str, SimOrder] = {}
        self.trades: list[SimTrade] = []
        self.attempts: list[Attempt] = []
        self._next_order_id = 1001
        self._next_trade_id = 5001

    # --- the clock and resting orders ---------------------------------------------------

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def catch_up(self) -> int:
        """Fill every resting order a closed candle traded through; return the time."""
        with self.lock:
            now = self.clock.now_ms()
            due = []  # (fill time, order id, order, price): filled in time order
            for order in self.orders.values():
                if order.status == "NEW":
                    hit = self._first_crossing(order, now)
                    if hit is not None:
                        close_time = self.markets[order.symbol].close_time(hit[0])
                        due.append((close_time, order.order_id, order, hit[1]))
            for close_time, _, order, price in sorted(due, key=lambda item: item[:2]):
                self._fill(order, price, close_time, is_maker=True)
            return now

    def _first_crossing(self, order: SimOrder, now: int) -> tuple[int, Decimal] | None:
        market = self.markets[order.symbol]
        if order.scanned_to < 0:
            # candles opening at or after its placement: none of them had traded before it
            order.scanned_to = bisect_left(market.candles.timestamps, order.time_ms)
        closed = market.closed_by(now)
        for i in range(order.scanned_to, closed):
            o, h, l, _ = market.candles.exact(i)  # noqa: E741
            if order.side == "BUY" and l <= order.price:
                return i, min(o, order.price)
            if order.side == "SELL" and h >= order.price:
                return i, max(o, order.price)
        order.scanned_to = max(order.scanned_to, closed)
        return None

    # --- orders ---------------------------------------------------------------------------

    def record_attempt(self, client_order_id: str, outcome: str,
                       fault: str | None = None) -> None:
        with self.lock:
            self.attempts.append(Attempt(client_order_id, outcome, self.clock.now_ms(), fault))

    def create_order(self, params: dict[str, str]) -> SimOrder:
        with self.lock:
            now = self.catch_up()
            market = self.market(params.get("symbol"))
            side = choice(params, "side", ("BUY", "SELL"), -1117, "Invalid side.")
            kind = choice(params, "type", ("LIMIT", "MARKET"), -1116, "Invalid orderType.")
            client_id = params.get("newClientOrderId") or f"sim{self._next_order_id}"
            if not _CLIENT_ID.match(client_id):
                raise illegal("newClientOrderId")
            current = market.price_at(now)
            if kind == "LIMIT":
                if params.get("timeInForce", "GTC") != "GTC":
                    raise BinanceError(400, -1115, "Invalid timeInForce.")
                price, qty = number(params, "price"), number(params, "quantity")
                self._check_price(market, price)
            elif "quoteOrderQty" in params:
                spend = number(params, "quoteOrderQty")
                qty = (spend / current).quantize(market.filters.step_size, ROUND_DOWN)
                price = Decimal(0)
            else:
                price, qty = Decimal(0), number(params, "quantity")
            self._check_quantity(market, qty, price or current)
            if client_id in self.by_client_id:
                raise BinanceError(400, -2010, "Duplicate order sent.")
            order = SimOrder(self._next_order_id, client_id, market.symbol, side, kind, price,
                             qty, now)
            if "quoteOrderQty" in params:
                order.orig_quote_qty = number(params, "quoteOrderQty")
            marketable = kind == "MARKET" or (
                price >= current if side == "BUY" else price <= current)
            self._lock_funds(order, market, price if kind == "LIMIT" else current)
            self._next_order_id += 1
            self.orders[order.order_id] = order
            self.by_client_id[client_id] = order
            if marketable:
                self._fill(order, current, now, is_maker=False)
            return order

    def cancel_order(self, params: dict[str, str]) -> SimOrder:
        with self.lock:
            now = self.catch_up()
            order = self._find(params)
            if order is None or order.status != "NEW":
                raise BinanceError(400, -2011, "Unknown order sent.")
            self.account.release(order.locked_asset, order.locked)
            order.locked = Decimal(0)
            order.status, order.update_ms = "CANCELED", now
            return order

    def get_order(self, params: dict[str, str]) -> SimOrder:
        with self.lock:
            self.catch_up()
            order = self._find(params)
            if order is None:
                raise BinanceError(400, -2013, "Order does not exist.")
            return order

    def open_orders(self, symbol: str | None) -> list[SimOrder]:
        with self.lock:
            self.catch_up()
            if symbol is not None:
                self.market(symbol)
            return [o for o in self.orders.values()
                    if o.status == "NEW" and symbol in (None, o.symbol)]

    def all_orders(self, params: dict[str, str]) -> list[SimOrder]:
        """Binance's ``allOrders``: oldest first; from ``orderId`` on, else in a time window
        (the first ``limit`` from ``startTime``), else the latest ``limit`` (500, max 1000)."""
        with self.lock:
            self.catch_up()
            symbol = self.market(params.get("symbol")).symbol
            limit = min(_count(params, "limit", 500), 1000)
            found = [o for o in self.orders.values() if o.symbol == symbol]
            if "orderId" in params:
                return [o for o in found if o.order_id >= _count(params, "orderId", 0)][:limit]
            return _window(found, params, limit, lambda o: o.time_ms)

    def my_trades(self, params: dict[str, str]) -> list[SimTrade]:
        """Binance's ``myTrades``: oldest first; ``fromId``, else a time window, else the
        latest ``limit`` (default 500, at most 1000)."""
        with self.lock:
            self.catch_up()
            symbol = self.market(params.get("symbol")).symbol
            limit = min(_count(params, "limit", 500), 1000)
            found = [t for t in self.trades if t.symbol == symbol]
            if "orderId" in params:
                found = [t for t in found if t.order_id == _count(params, "orderId", 0)]
            if "fromId" in params:
                return [t for t in found if t.trade_id >= _count(params, "fromId", 0)][:limit]
            return _window(found, params, limit, lambda t: t.time_ms)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        with self.lock:
            self.catch_up()
            assets = sorted(set(self.account.free) | set(self.account.locked))
            return {a: (self.account.free.get(a, Decimal(0)),
                        self.account.locked.get(a, Decimal(0))) for a in assets}

    def deposit(self, asset: str, amount: Decimal) -> None:
        with self.lock:
            self.account.credit(asset, amount)
            self.initial_balances[asset] = self.initial_balances.get(asset, Decimal(0)) + amount

    def client_order_ids_seen(self) -> Counter[str]:
        with self.lock:
            return Counter(attempt.client_order_id for attempt in self.attempts)

    def market(self, symbol: str | None) -> Market:
        if not symbol:
            raise missing("symbol")
        market = self.markets.get(symbol)
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    # --- inside -------------------------------------------------------------------------

    def _find(self, params: dict[str, str]) -> SimOrder | None:
        symbol = self.market(params.get("symbol")).symbol
        if "orderId" in params:
            try:
                order = self.orders.get(int(params["orderId"]))
            except ValueError:
                raise illegal("orderId") from None
        elif "origClientOrderId" in params:
            order = self.by_client_id.get(params["origClientOrderId"])
        else:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be "
                                           "sent, but both were empty/null!")
        return order if order is not None and order.symbol == symbol else None

    def _check_price(self, market: Market, price: Decimal) -> None:
        f = market.filters
        if price < (f.min_price or f.tick_size) or price > f.max_price or price % f.tick_size:
            raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")

    def _check_quantity(self, market: Market, qty: Decimal, price: Decimal) -> None:
        f = market.filters
        if qty < f.min_qty or qty > f.max_qty or qty % f.step_size:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        if not f.min_notional <= qty * price <= f.max_notional:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")

    def _fee(self, amount: Decimal) -> Decimal:
        return (amount * self.fee_rate).quantize(_COMMISSION, ROUND_HALF_UP)

    def _lock_funds(self, order: SimOrder, market: Market, price: Decimal) -> None:
        if order.side == "BUY":
            cost = price * order.qty
            if self.fee_mode == "quote":
                cost += self._fee(cost)
            order.locked_asset, order.locked = market.quote, cost
        else:
            order.locked_asset, order.locked = market.base, order.qty
        self.account.take(order.locked_asset, order.locked)

    def _fill(self, order: SimOrder, price: Decimal, time_ms: int, *, is_maker: bool) -> None:
        market = self.markets[order.symbol]
        quote_qty = price * order.qty
        fee_in_base = order.side == "BUY" and self.fee_mode == "binance"
        commission = self._fee(order.qty if fee_in_base else quote_qty)
        fee_asset = market.base if fee_in_base else market.quote
        self.account.release(order.locked_asset, order.locked)
        order.locked = Decimal(0)
        if order.side == "BUY":
            spent = quote_qty + (commission if fee_asset == market.quote else 0)
            self.account.free[market.quote] -= spent
            self.account.credit(market.base, order.qty - (commission if fee_in_base else 0))
        else:
            self.account.free[market.base] -= order.qty
            self.account.credit(market.quote, quote_qty - commission)
        order.status, order.update_ms = "FILLED", time_ms
        order.executed_qty, order.cum_quote = order.qty, quote_qty
        self.trades.append(SimTrade(self._next_trade_id, order.order_id, order.client_order_id,
                                    order.symbol, order.side, price, order.qty, quote_qty,
                                    commission, fee_asset, time_ms, is_maker))
        self._next_trade_id += 1


def _count(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise illegal(name)
    return int(text)


def _window(rows: list[Any], params: dict[str, str], limit: int,
            time_of: Callable[[Any], int]) -> list[Any]:
    """Rows between ``startTime`` and ``endTime``: the first ``limit`` of them from a start,
    else the last ``limit``."""
    start, end = _count(params, "startTime", 0), _count(params, "endTime", 2**63)
    rows = [row for row in rows if start <= time_of(row) <= end]
    return rows[:limit] if "startTime" in params else rows[-limit:]
