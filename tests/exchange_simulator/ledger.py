"""The simulator's own books, as a test reads them: every trade, every order, the balances,
and every create attempt by client order id. Decimals throughout.

Realized P/L as the exchange sees it (:meth:`Ledger.realized_pnl`): the change of the quote
asset's balance (free + locked) since the start, plus the change of every other asset's
balance valued at a mark price (given, or the price of that asset's last trade against the
quote asset). With every position closed and no dust left, the marks drop out and this is
the quote balance's change: what was earned after every fee.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class LedgerTrade:
    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str  # Binance's id: BTCUSDT
    side: str  # BUY | SELL
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool


@dataclass(frozen=True)
class Attempt:
    client_order_id: str
    outcome: str  # "accepted", "refused:<Binance code>", "not_executed"
    time_ms: int
    fault: str | None


@dataclass(frozen=True)
class Ledger:
    now_ms: int
    pairs: dict[str, str]  # BTCUSDT -> BTC/USDT
    initial_balances: dict[str, Decimal]
    free: dict[str, Decimal]
    locked: dict[str, Decimal]
    trades: list[LedgerTrade]
    orders: list[dict[str, Any]]  # Binance's order rows
    attempts: list[Attempt]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        money = ("price", "qty", "quote_qty", "commission")
        trades = [LedgerTrade(**{k: Decimal(v) if k in money else v for k, v in row.items()})
                  for row in data["trades"]]
        return cls(
            now_ms=data["now_ms"], pairs=data["markets"],
            initial_balances={a: Decimal(v) for a, v in data["initial_balances"].items()},
            free={a: Decimal(v["free"]) for a, v in data["balances"].items()},
            locked={a: Decimal(v["locked"]) for a, v in data["balances"].items()},
            trades=trades, orders=data["orders"],
            attempts=[Attempt(**row) for row in data["attempts"]])

    def total(self, asset: str) -> Decimal:
        return self.free.get(asset, Decimal(0)) + self.locked.get(asset, Decimal(0))

    def change(self, asset: str) -> Decimal:
        return self.total(asset) - self.initial_balances.get(asset, Decimal(0))

    def client_order_ids_seen(self) -> Counter[str]:
        """How many create requests carried each client order id (whatever became of them)."""
        return Counter(attempt.client_order_id for attempt in self.attempts)

    def trades_of(self, client_order_id: str) -> list[LedgerTrade]:
        return [t for t in self.trades if t.client_order_id == client_order_id]

    def fees(self, asset: str) -> Decimal:
        return sum((t.commission for t in self.trades if t.commission_asset == asset),
                   Decimal(0))

    def quote_flow(self, pair: str) -> Decimal:
        """What the trades of ``pair`` ("BTC/USDT") did to the quote balance: sells' proceeds
        less buys' costs, less every commission paid in the quote asset."""
        flow = Decimal(0)
        for t in self._trades_of_pair(pair):
            flow += t.quote_qty if t.side == "SELL" else -t.quote_qty
            if t.commission_asset == pair.split("/")[1]:
                flow -= t.commission
        return flow

    def base_flow(self, pair: str) -> Decimal:
        """What the trades of ``pair`` did to the base balance, commissions in base included."""
        flow = Decimal(0)
        for t in self._trades_of_pair(pair):
            flow += t.qty if t.side == "BUY" else -t.qty
            if t.commission_asset == pair.split("/", maxsplit=1)[0]:
                flow -= t.commission
        return flow

    def _trades_of_pair(self, pair: str) -> list[LedgerTrade]:
        symbol = pair.replace("/", "")
        return [t for t in self.trades if t.symbol == symbol]

    def realized_pnl(self, quote: str = "USDT",
                     marks: dict[str, Decimal] | None = None) -> Decimal:
        """The quote balance's change plus every other asset's change at its mark price."""
        marks = dict(marks or {})
        pnl = self.change(quote)
        assets = set(self.initial_balances) | set(self.free) | set(self.locked)
        for asset in sorted(assets - {quote}):
            moved = self.change(asset)
            if moved:
                mark = marks.get(asset)
                pnl += moved * (mark if mark is not None else self._last_price(asset, quote))
        return pnl

    def _last_price(self, asset: str, quote: str) -> Decimal:
        symbol = asset + quote
        for trade in reversed(self.trades):
            if trade.symbol == symbol:
                return trade.price
        raise ValueError(f"no {asset}/{quote} trade to value {asset} at: give marks=")
