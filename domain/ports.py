"""The ports the domain and engine need from the outside world. Adapters implement them;
only the composition root (``application.bootstrap``) chooses which."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from uuid import UUID

from domain.errors import DomainError
from domain.orders import OrderSide, OrderStatus, OrderType

if TYPE_CHECKING:  # only named in signatures; not every process needs credentials
    from domain.credentials import NewPassword


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdSource(Protocol):
    def new_id(self) -> UUID: ...


# The values the venue and the engine pass on every order: named tuples, immutable like
# frozen dataclasses but built several times faster (a backtest makes tens of thousands).


class OrderRequest(NamedTuple):
    client_order_id: str
    pair: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    price: Decimal | None = None
    # The position (a deal) the order buys into or sells out of. A venue that keeps what
    # each position holds (the paper venue) sells exactly that on an exit, whatever the
    # account's pooled balance rounded; others may ignore it.
    position: str | None = None


class Trade(NamedTuple):
    trade_id: str
    price: Decimal
    amount: Decimal  # what was bought or sold, before any fee
    fee: Decimal
    fee_currency: str
    # A live exchange's trade: its time (UTC ms). The paper venue leaves it None.
    time_ms: int | None = None
    # A fee in a third asset (BNB) valued in quote, and the rate used (quote per unit of the
    # fee's asset), recorded by the venue that converted it. None: no conversion was made
    # (the fee is in quote or base, or no rate was known). The paper venue leaves them None.
    fee_quote: Decimal | None = None
    fee_conversion_rate: Decimal | None = None

    def base_held_change(self, side: OrderSide, base: str) -> Decimal:
        """What the trade changes in the base asset held: a fee paid in base is taken from
        it (a buy of 1 BTC with a 0.001 BTC fee leaves 0.999 BTC to sell)."""
        fee_in_base = self.fee if self.fee_currency == base else Decimal(0)
        if side is OrderSide.BUY:
            return self.amount - fee_in_base
        return -(self.amount + fee_in_base)

    def fee_in_quote(self, base: str, quote: str) -> Decimal | None:
        """The fee valued in quote: as is, at the trade's price when paid in base, at the
        recorded rate when paid in a third asset, else None (no rate known)."""
        if self.fee_currency == quote:
            return self.fee
        if self.fee_currency == base:
            return self.fee * self.price
        return self.fee_quote


class ExchangeOrder(NamedTuple):
    """What the exchange says about one order (ccxt's unified order, reduced to what we use).

    ``status`` SUBMITTED means the answer is not known (the exchange could not be reached
    after retries): the order stays as submitted until reconciliation finds it or not.
    ``observed``: the answer is a live exchange's report (recorded as ``ObservedOpen`` /
    ``TradeObserved``), not the paper venue's."""

    exchange_order_id: str
    client_order_id: str
    status: OrderStatus
    trades: tuple[Trade, ...] = ()
    reason: str | None = None
    observed: bool = False


class MarketRules(NamedTuple):
    """An exchange's rules for one pair; None where the exchange sets no such rule."""

    amount_step: Decimal | None
    price_step: Decimal | None
    min_amount: Decimal | None
    min_notional: Decimal | None  # amount × price


class Balance(NamedTuple):
    free: Decimal
    locked: Decimal = Decimal(0)

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

    # Added for live trading and reconciliation. Not abstract, so a venue written before
    # them keeps working; both venues of ours implement them. The defaults refuse rather
    # than answer "unknown" or "none open": reconciliation would take that as a lost order.

    def fetch_order_by_client_id(self, client_order_id: str, pair: str) -> ExchangeOrder | None:
        """The order placed with the engine's ``client_order_id``, or None when the exchange
        does not know it (it never arrived): how a create that timed out is looked up."""
        raise DomainError(f"{type(self).__name__} cannot look orders up by client id",
                          code="EXCHANGE_NOT_SUPPORTED")

    def fetch_open_orders(self, pair: str | None = None) -> list[ExchangeOrder]:
        """Orders resting on the exchange (of ``pair``, or of every pair)."""
        raise DomainError(f"{type(self).__name__} cannot list open orders",
                          code="EXCHANGE_NOT_SUPPORTED")

    def market_rules(self, pair: str) -> MarketRules | None:
        """The exchange's steps and minimums for ``pair``; None when it sets none."""
        return None


class OrderUpdateListener(Protocol):
    """Receives what an exchange reports about an order after placing it (fills, cancels)."""

    def on_order_update(self, update: ExchangeOrder) -> None: ...


class PriceWatcher(OrderUpdateListener, Protocol):
    """A strategy that also acts on price levels it holds itself (take profit, stop loss).

    ``trigger_levels`` returns ``(below, above)``: act when the price falls to ``below`` or
    rises to ``above``; a simulated market stops its price path at those levels."""

    def trigger_levels(self) -> tuple[Decimal | None, Decimal | None]: ...

    def on_price(self, price: Decimal) -> None: ...

    # Optional: ``high_watch() -> Decimal | None``, a price above which the watcher follows
    # every new high (a trailing take profit): a simulated market then also stops at each
    # rising leg's end, and a candle reaching above it is not skipped.


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


class HistoricCandle(NamedTuple):
    """One candle as an exchange's history gives it, exact (volume in the base asset)."""

    ts_ms: int  # open time, UTC ms
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class CandleHistory(Protocol):
    """An exchange's candle history and clock (ccxt's ``fetch_ohlcv`` and ``fetch_time``)."""

    def exchange_time_ms(self) -> int | None:
        """The exchange's own time, UTC ms; None when the exchange does not tell it (then a
        candle counts as closed once a later one exists)."""
        ...

    def candles(self, pair: str, timeframe: str, since_ms: int,
                limit: int) -> list[HistoricCandle]:
        """Up to ``limit`` candles opening at or after ``since_ms``, oldest first; the
        last may still be open."""
        ...


# --- identity and security ------------------------------------------------------------------


class PasswordHasher(ABC):
    """A slow, salted one-way hash (bcrypt). Its output never leaves the server."""

    @abstractmethod
    def hash(self, password: NewPassword) -> str: ...

    @abstractmethod
    def verify(self, password: str, hashed: str | None) -> bool:
        """False for a wrong password, and for ``hashed=None`` after spending the same time
        (so an unknown email answers as slowly as a wrong password)."""


class Mailer(ABC):
    @abstractmethod
    def send(self, to: str, subject: str, body: str) -> None: ...


class DataKeyStore(ABC):
    """Per-user data keys, kept OUTSIDE the event log, and the sealing done with them.

    Sealed text is safe to record in events. Once a user's key is destroyed, everything
    sealed under it reads as ``None`` (crypto-shredding)."""

    @abstractmethod
    def create_key(self, owner: UUID) -> None: ...

    @abstractmethod
    def seal(self, owner: UUID, purpose: str, text: str) -> str:
        """Encrypt ``text``, bound to ``owner`` and ``purpose`` (``email``, ...)."""

    @abstractmethod
    def unseal(self, owner: UUID, purpose: str, sealed: str) -> str | None:
        """The text, or ``None`` when the owner's key was destroyed."""

    @abstractmethod
    def destroy_key(self, owner: UUID) -> None:
        """Irreversible. Destroying a missing key is not an error."""


class EmailIndex(ABC):
    """Finds a user by email without the log holding the address: a keyed digest of the
    address -> user id, rebuildable from the events and the data keys."""

    @abstractmethod
    def claim(self, email: str, owner: UUID) -> bool:
        """Tie ``email`` to ``owner``; False if another user already has it."""

    @abstractmethod
    def find(self, email: str) -> UUID | None: ...

    @abstractmethod
    def release(self, owner: UUID) -> None: ...

    @abstractmethod
    def clear(self) -> None:
        """Forget every entry (before a rebuild from the events and the keys)."""


@dataclass(frozen=True)
class AccessClaims:
    """What a signed access token says: who, in which session, as what, until when."""

    user_id: UUID
    session_id: UUID
    role: str
    expires_at: datetime


class TokenSigner(ABC):
    @abstractmethod
    def sign(self, claims: AccessClaims) -> str: ...

    @abstractmethod
    def read(self, token: str) -> AccessClaims | None:
        """The claims of a token this signer made (expired or not), else ``None``."""


class SecretSource(Protocol):
    def new_secret(self) -> str:
        """A fresh, unguessable, URL-safe string (at least 256 random bits)."""
        ...


# --- exchange accounts ----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ApiCredentials:
    """An account's keys in the clear: held in memory only while a client is built or the
    keys are checked. ``repr`` hides them, so a key never reaches a log line or a
    traceback's locals dump."""

    api_key: str
    secret: str
    password: str | None = None

    def __repr__(self) -> str:
        return "ApiCredentials(***)"


class ExchangeConnector(ABC):
    """Authenticated calls on an exchange for one account's keys, before (and apart from)
    any trading: adding an account checks its keys, ``accounts balances`` shows them."""

    @abstractmethod
    def verify(self, exchange: str, sandbox: bool,
               credentials: ApiCredentials) -> dict[str, Balance]:
        """The account's balances by asset, through an authenticated call. A refusal is a
        ``DomainError`` with one code: ``EXCHANGE_AUTH_FAILED``,
        ``EXCHANGE_PERMISSION_DENIED``, ``EXCHANGE_UNAVAILABLE``, ``EXCHANGE_NOT_SUPPORTED``
        (or ``EXCHANGE_ERROR`` for any other answer), never with a key in its message."""
