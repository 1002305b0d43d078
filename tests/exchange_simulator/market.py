"""The simulator's market: a simulated clock and one candle file per pair.

The simulated clock starts at ``start_ms`` (by default the first candle's open time) and runs
``speed`` times faster than the wall clock; with ``speed=0`` it stands still until a test
moves it (:meth:`SimulatedClock.advance`, :meth:`SimulatedClock.set`). It never goes back:
fills already made at a time cannot be taken back.

What a client sees of the candles is what Binance shows at that time: every candle that has
opened by now, the last one possibly still open (its close time is after now). The candle
still open shows only its open price (open = high = low = close, volume 0), because the file's
high, low and close are the future; the current price is that open (or the last close past
the end of the file or in a gap).
"""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from adapters.marketdata.csv_candles import Candles, load_candles

INTERVALS = {60_000: "1m", 180_000: "3m", 300_000: "5m", 900_000: "15m", 1_800_000: "30m",
             3_600_000: "1h", 7_200_000: "2h", 14_400_000: "4h", 21_600_000: "6h",
             28_800_000: "8h", 43_200_000: "12h", 86_400_000: "1d"}
_PAIR_IN_NAME = re.compile(r"([A-Z0-9]{2,})_([A-Z0-9]{2,})-\d+[smhdwM]")


class SimulatedClock:
    """Market time in UTC milliseconds: ``start_ms`` + wall time elapsed × ``speed`` + every
    :meth:`advance`. Thread-safe: the HTTP threads and the test read it together."""

    def __init__(self, start_ms: int, speed: float = 0.0,
                 wall: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (a manual clock) or positive")
        self._lock = threading.Lock()
        self._wall = wall
        self._base_ms = int(start_ms)
        self._wall_start = wall()
        self._speed = float(speed)

    def now_ms(self) -> int:
        with self._lock:
            return self._now_locked()

    @property
    def speed(self) -> float:
        return self._speed

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("the simulated clock never goes back")
        with self._lock:
            self._base_ms += int(ms)
            return self._now_locked()

    def set(self, now_ms: int) -> int:
        with self._lock:
            if now_ms < self._now_locked():
                raise ValueError("the simulated clock never goes back")
            self._base_ms, self._wall_start = int(now_ms), self._wall()
            return self._base_ms

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (a manual clock) or positive")
        with self._lock:
            self._base_ms, self._wall_start = self._now_locked(), self._wall()
            self._speed = float(speed)

    def _now_locked(self) -> int:
        return self._base_ms + int((self._wall() - self._wall_start) * 1000 * self._speed)


@dataclass(frozen=True)
class MarketFilters:
    """Binance's PRICE_FILTER, LOT_SIZE and NOTIONAL values for one symbol."""

    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal = Decimal("9000")
    min_price: Decimal | None = None  # None: the tick size, as Binance lists it
    max_price: Decimal = Decimal("1000000")
    max_notional: Decimal = Decimal("9000000")


# Binance's real spot values (2025) for the pairs our data covers; other pairs get fine
# defaults (tests may pass their own).
KNOWN_FILTERS = {
    "BTCUSDT": MarketFilters(Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"),
                             Decimal("5")),
    "ETHUSDT": MarketFilters(Decimal("0.01"), Decimal("0.0001"), Decimal("0.0001"),
                             Decimal("5")),
    "ETHBTC": MarketFilters(Decimal("0.00001"), Decimal("0.0001"), Decimal("0.0001"),
                            Decimal("0.0001"), max_price=Decimal("922327")),
}
DEFAULT_FILTERS = MarketFilters(Decimal("0.00000001"), Decimal("0.00000001"),
                                Decimal("0.00000001"), Decimal("0"))


@dataclass(frozen=True, eq=False)
class Market:
    """One pair traded on the simulator, with its candles."""

    base: str
    quote: str
    candles: Candles
    filters: MarketFilters

    @property
    def symbol(self) -> str:  # Binance's id: BTCUSDT
        return self.base + self.quote

    @property
    def pair(self) -> str:  # ccxt's symbol: BTC/USDT
        return f"{self.base}/{self.quote}"

    @property
    def interval_ms(self) -> int:
        return self.candles.interval_ms or 60_000

    @property
    def interval(self) -> str:
        return INTERVALS.get(self.interval_ms, f"{self.interval_ms // 60_000}m")

    @property
    def first_open_ms(self) -> int:
        return int(self.candles.timestamps[0])

    def opened_by(self, now_ms: int) -> int:
        """How many candles have opened at ``now_ms`` (the last may still be open)."""
        return bisect_right(self.candles.timestamps, now_ms)

    def closed_by(self, now_ms: int) -> int:
        """How many candles have closed at ``now_ms``."""
        return bisect_right(self.candles.timestamps, now_ms - self.interval_ms)

    def close_time(self, i: int) -> int:
        return int(self.candles.timestamps[i]) + self.interval_ms - 1

    def price_at(self, now_ms: int) -> Decimal:
        """The price a market order gets now: the open of the candle open now, else the last
        close (in a gap, past the end), else the first open (before the file starts)."""
        opened = self.opened_by(now_ms)
        if opened == 0:
            return self.candles.exact(0)[0]
        if opened > self.closed_by(now_ms):
            return self.candles.exact(opened - 1)[0]
        return self.candles.exact_close(opened - 1)

    def klines(self, now_ms: int, start_ms: int | None, end_ms: int | None,
               limit: int) -> list[list[object]]:
        """Binance's kline rows as of ``now_ms``: oldest first, ``limit`` of them from
        ``start_ms`` on, or the last ``limit`` up to ``end_ms`` (or now) without a start."""
        stamps = self.candles.timestamps
        last = self.opened_by(now_ms if end_ms is None else min(now_ms, end_ms))
        if start_ms is not None:
            first = bisect_right(stamps, start_ms - 1)
            last = min(last, first + limit)
        else:
            first = max(0, last - limit)
        closed = self.closed_by(now_ms)
        return [self._kline(i, still_open=i >= closed) for i in range(first, last)]

    def _kline(self, i: int, *, still_open: bool) -> list[object]:
        o, h, l, c = self.candles.exact(i)  # noqa: E741
        volume = Decimal(repr(float(self.candles.volume[i])))
        if still_open:
            h = l = c = o  # noqa: E741
            volume = Decimal(0)
        quote_volume = (volume * c).quantize(Decimal("0.00000001"))
        return [int(self.candles.timestamps[i]), fmt(o), fmt(h), fmt(l), fmt(c), fmt(volume),
                self.close_time(i), fmt(quote_volume), 0 if still_open else 1, "0.00000000",
                "0.00000000", "0"]


def fmt(value: Decimal) -> str:
    """A decimal as Binance writes it: at least 8 decimals ("109608.01000000")."""
    text = format(value, "f")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(8, '0')}"


def pair_from_filename(path: str | Path) -> tuple[str, str]:
    """``("BTC", "USDT")`` from a name such as ``binance_BTC_USDT-1m-2025-11.csv``."""
    found = _PAIR_IN_NAME.search(Path(path).name)
    if not found:
        raise ValueError(f"{path}: cannot tell the pair from the file name; "
                         "give it as PAIR=FILE (BTC/USDT=candles.csv)")
    return found.group(1), found.group(2)


def load_market(path: str | Path, pair: str | None = None,
                filters: MarketFilters | None = None) -> Market:
    base, quote = pair.upper().split("/") if pair else pair_from_filename(path)
    chosen = filters or KNOWN_FILTERS.get(base + quote, DEFAULT_FILTERS)
    return Market(base=base, quote=quote, candles=load_candles(path), filters=chosen)
