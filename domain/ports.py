"""The ports the domain and engine need from the outside world. Adapters implement them;
only the composition root (``application.bootstrap``) chooses which."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from domain.orders import OrderSide, OrderStatus, OrderType


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdSource(Protocol):
    def new_id(self) -> UUID: ...


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    pair: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    price: Decimal | None = None


@dataclass(frozen=True)
class Trade:
    trade_id: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str


@dataclass(frozen=True)
class ExchangeOrder:
    """What the exchange says about one order (ccxt's unified order, reduced to what we use)."""

    exchange_order_id: str
    client_order_id: str
    status: OrderStatus
    trades: tuple[Trade, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Balance:
    free: Decimal
    locked: Decimal = field(default=Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class Exchange(ABC):
    """A trading venue: the paper simulator, or a real exchange through ccxt."""

    @abstractmethod
    def create_order(self, request: OrderRequest) -> ExchangeOrder:
        """Place an order. A refusal (funds, limits) comes back as status ``rejected`` with a
        reason, never as an exception: it is a fact to record, not a crash."""

    @abstractmethod
    def cancel_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder: ...

    @abstractmethod
    def fetch_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder: ...

    @abstractmethod
    def fetch_balance(self) -> dict[str, Balance]: ...


class OrderUpdateListener(Protocol):
    """Receives what an exchange reports about an order after placing it (fills, cancels)."""

    def on_order_update(self, update: ExchangeOrder) -> None: ...


class PriceWatcher(OrderUpdateListener, Protocol):
    """A strategy that also acts on price levels it holds itself (take profit, stop loss).

    ``trigger_levels`` returns ``(below, above)``: act when the price falls to ``below`` or
    rises to ``above``; a simulated market stops its price path at those levels."""

    def trigger_levels(self) -> tuple[Decimal | None, Decimal | None]: ...

    def on_price(self, price: Decimal) -> None: ...


class CandleSeries(Protocol):
    """Candles as arrays (floats only to *locate* candles fast) plus their exact values.

    ``timestamps`` are candle open times in UTC milliseconds; ``low``, ``high``, ``close``
    are numpy float64 arrays; ``exact(i)`` gives the exact ``(open, high, low, close)``."""

    timestamps: Any
    low: Any
    high: Any
    close: Any
    interval_ms: int
    sha256: str | None
    source: str

    def __len__(self) -> int: ...

    def exact(self, i: int) -> tuple[Decimal, Decimal, Decimal, Decimal]: ...

    def exact_close(self, i: int) -> Decimal: ...


class SimulatedVenue(Protocol):
    """An exchange whose market the caller moves, candle by candle (the paper adapter)."""

    def walk_candle(
        self, o: Decimal, h: Decimal, low: Decimal, c: Decimal, watcher: PriceWatcher
    ) -> None: ...

    def trigger_band(self, watcher: PriceWatcher) -> tuple[Decimal | None, Decimal | None]: ...


@dataclass(frozen=True)
class ClosedCandle:
    """A candle that has just closed on a live (or replayed) market."""

    pair: str
    ts_ms: int  # open time, UTC ms
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class MarketFeed(Protocol):
    def poll(self, now: datetime) -> list[ClosedCandle]:
        """Candles closed since the last poll, oldest first."""
        ...

    def seconds_to_next(self, now: datetime) -> float: ...
