"""What the simulator keeps and answers with, in Binance's shapes: orders, trades, create
attempts, the account's free and locked balances, and Binance's error answers."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation

from tests.exchange_simulator.market import fmt

_NUMBER = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")


class BinanceError(Exception):
    """An error answer in Binance's format: ``{"code": -2010, "msg": "..."}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status, self.code, self.msg = status, code, msg


def insufficient_balance() -> BinanceError:
    return BinanceError(400, -2010, "Account has insufficient balance for requested action.")


def missing(name: str) -> BinanceError:
    return BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null,"
                                    " or malformed.")


@dataclass
class SimOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY | SELL
    type: str  # LIMIT | MARKET
    price: Decimal  # 0 for market orders, as Binance shows them
    qty: Decimal
    time_ms: int
    status: str = "NEW"  # NEW | FILLED | CANCELED
    update_ms: int = 0
    executed_qty: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    locked_asset: str = ""
    locked: Decimal = Decimal(0)
    orig_quote_qty: Decimal = Decimal(0)
    scanned_to: int = -1  # candles before this index were checked already (-1: none yet)

    def as_binance(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "price": fmt(self.price),
            "origQty": fmt(self.qty), "executedQty": fmt(self.executed_qty),
            "cummulativeQuoteQty": fmt(self.cum_quote), "status": self.status,
            "timeInForce": "GTC", "type": self.type, "side": self.side,
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": self.time_ms,
            "updateTime": self.update_ms or self.time_ms, "isWorking": True,
            "workingTime": self.time_ms, "origQuoteOrderQty": fmt(self.orig_quote_qty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass(frozen=True)
class SimTrade:
    """One fill, as the simulator's ledger records it."""

    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool

    def as_binance(self) -> dict[str, object]:
        return {
            "symbol": self.symbol, "id": self.trade_id, "orderId": self.order_id,
            "orderListId": -1, "price": fmt(self.price), "qty": fmt(self.qty),
            "quoteQty": fmt(self.quote_qty), "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset, "time": self.time_ms,
            "isBuyer": self.side == "BUY", "isMaker": self.is_maker, "isBestMatch": True,
        }

    def as_json(self) -> dict[str, object]:
        return {key: str(value) if isinstance(value, Decimal) else value
                for key, value in asdict(self).items()}


@dataclass
class Attempt:
    """A create request that carried a client order id, and what became of it."""

    client_order_id: str
    outcome: str  # "accepted", "refused:-2010" (Binance's code), "not_executed"
    time_ms: int
    fault: str | None = None  # the fault that hit the request, if any


@dataclass
class Account:
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)

    def take(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked, or refuse with Binance's -2010."""
        if self.free.get(asset, Decimal(0)) < amount:
            raise insufficient_balance()
        self.free[asset] -= amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount

    def release(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] -= amount
        self.free[asset] = self.free.get(asset, Decimal(0)) + amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) + amount


def number(params: dict[str, str], name: str) -> Decimal:
    text = params.get(name)
    if not text:
        raise missing(name)
    if not _NUMBER.match(text):
        raise illegal(name)
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        raise illegal(name) from None


def illegal(name: str) -> BinanceError:
    return BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                                    "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")


def choice(params: dict[str, str], name: str, allowed: tuple[str, ...], code: int,
            msg: str) -> str:
    value = params.get(name)
    if not value:
        raise missing(name)
    if value not in allowed:
        raise BinanceError(400, code, msg)
    return value
