"""An exchange's candle history and clock through ccxt (a :class:`CandleHistory`).

- Prices come out exact: the client parses numbers as text (ccxt's ``number = str``), so
  Binance's ``"42283.58000000"`` becomes ``Decimal("42283.58000000")``, never a float. The
  markets are loaded first with ccxt's usual floats, since they are shared with every other
  client of the exchange (``ccxt_client.load_markets``).
- ccxt's errors become named codes at this boundary (``ccxt_errors.translate``). Transient
  ones (network, rate limit) are retried ``attempts - 1`` times with backoff; every request
  waits its turn in ccxt's rate limiter (``enableRateLimit``, on in ``open_client``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.exchanges.ccxt_client import load_markets
from adapters.exchanges.ccxt_errors import backoff_seconds, is_transient, translate
from domain.errors import DomainError
from domain.ports import HistoricCandle

log = logging.getLogger("tradetape.marketdata")
DEFAULT_PAGE = 500  # when ccxt does not say how many candles one request may return


class CcxtCandleHistory:
    def __init__(self, client: Any, *, sandbox: bool, sandbox_host: str | None = None,
                 attempts: int = 1, sleep: Callable[[float], None] = time.sleep):
        self.client, self.sandbox, self.sandbox_host = client, sandbox, sandbox_host
        self.attempts, self.sleep = max(1, attempts), sleep
        self._ready = False

    @property
    def exchange_id(self) -> str:
        return self.client.id

    def prepare(self) -> None:
        """Load the markets (once) and switch number parsing to exact text."""
        if self._ready:
            return
        if not self.client.has.get("fetchOHLCV"):
            raise DomainError(f"{self.client.id} has no candle history in ccxt",
                              code="EXCHANGE_NOT_SUPPORTED", field="exchange")
        self._call(lambda: load_markets(self.client, sandbox=self.sandbox,
                                        sandbox_host=self.sandbox_host), "loading the markets")
        self.client.number = str
        self._ready = True

    def check_live_feed_support(self) -> None:
        """A live feed needs the exchange's candles and its clock (no request is made)."""
        for method in ("fetchOHLCV", "fetchTime"):
            if not self.client.has.get(method):
                raise DomainError(f"{self.client.id} cannot feed live candles: ccxt has no "
                                  f"{method} for it", code="EXCHANGE_NOT_SUPPORTED",
                                  field="TRADETAPE_FEED")

    def check_pair(self, pair: str) -> None:
        self.prepare()
        market = self.client.markets.get(pair)
        if market is None or not market.get("spot", True):
            raise DomainError(f"{self.client.id} does not list the spot pair {pair}",
                              code="PAIR_NOT_TRADED", field="pair")

    def timeframe_ms(self, timeframe: str) -> int:
        """A timeframe the exchange offers (``1m``, ``1h`` ...), in milliseconds."""
        offered = self.client.timeframes or {}
        if timeframe not in offered:
            shown = ", ".join(list(offered)[:20])
            raise DomainError(f"{self.client.id} has no {timeframe!r} candles (it has: "
                              f"{shown})", code="INVALID_TIMEFRAME", field="timeframe")
        return int(self.client.parse_timeframe(timeframe) * 1000)

    def page_limit(self) -> int:
        """The most candles one request returns (ccxt's ``features``), else 500."""
        features = getattr(self.client, "features", None) or {}
        ohlcv = (features.get("spot") or {}).get("fetchOHLCV") or {}
        limit = ohlcv.get("limit")
        return int(limit) if isinstance(limit, int) and limit > 0 else DEFAULT_PAGE

    def exchange_time_ms(self) -> int | None:
        if not self.client.has.get("fetchTime"):
            return None
        return int(self._call(self.client.fetch_time, "fetching its time"))

    def candles(self, pair: str, timeframe: str, since_ms: int,
                limit: int) -> list[HistoricCandle]:
        self.prepare()
        rows = self._call(lambda: self.client.fetch_ohlcv(pair, timeframe, since_ms, limit),
                          f"fetching {pair} {timeframe} candles")
        return [_exact(row, pair) for row in rows]

    def _call(self, request: Callable[[], Any], doing: str) -> Any:
        import ccxt

        for attempt in range(self.attempts):
            try:
                return request()
            except ccxt.BaseError as error:
                if not is_transient(error) or attempt + 1 == self.attempts:
                    raise translate(error, doing) from None
                delay = backoff_seconds(attempt)
                log.warning("%s: %s failed (%s), retrying in %.1f s", self.client.id, doing,
                            type(error).__name__, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _exact(row: Any, pair: str) -> HistoricCandle:
    """A ccxt OHLCV row ``[ms, o, h, l, c, v]`` as exact values. Numbers arrive as the
    exchange's text; one sent as a JSON number is taken at its shortest repr."""
    try:
        ts = int(row[0])
        values = [_decimal(value) for value in row[1:6]]
    except (TypeError, ValueError, IndexError, InvalidOperation):
        raise DomainError(f"the exchange sent a {pair} candle that is not numbers: "
                          f"{str(row)[:120]}", code="BAD_CANDLE_DATA") from None
    return HistoricCandle(ts, *values)


def _decimal(value: Any) -> Decimal:
    if value is None:  # a candle with no trade may have no volume
        return Decimal(0)
    number = Decimal(value if isinstance(value, str) else repr(value))
    if not number.is_finite():
        raise ValueError(value)
    return number
