"""The live market feed (``TRADETAPE_FEED=ccxt:EXCHANGE``): every closed 1-minute candle of
every pair a running bot trades, from the exchange's candle history (``fetch_ohlcv``).

It follows the exchange's clock, never ours: a candle that opened at ``t`` is delivered once
the exchange's time (``fetch_time``) has reached ``t + 1 min``, and each pair goes on from
the last candle it delivered. So after a disconnect the missed candles come first, in order,
before any later one, and the feed works unchanged against a simulator running many times
faster than real time. A pair seen for the first time starts at its latest closed candle.

The wall clock (``now``) only paces the requests: one round every ``poll_seconds``, sooner
while catching up. A failed round (network, rate limit, the exchange down) is tried again at
the next; an outage is logged on one line when it starts and one when it ends, and nothing
is skipped meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from domain.errors import DomainError
from domain.ports import CandleHistory, ClosedCandle

log = logging.getLogger("tradetape.feed")
MINUTE_MS = 60_000


class CcxtFeed:
    def __init__(self, history: CandleHistory, pairs: Callable[[], Iterable[str]], *,
                 poll_seconds: float = 2.0, page: int = 1000, max_pages_per_poll: int = 10):
        self.history, self.pairs = history, pairs
        self.poll_seconds, self.page = poll_seconds, page
        self.max_pages_per_poll = max_pages_per_poll
        self._next_ts: dict[str, int] = {}  # per pair: the open time of the next candle due
        self._next_poll: datetime | None = None
        self._behind = False  # the last round stopped at its page budget
        self._refused: dict[str, str] = {}  # pairs the exchange refused: logged once
        self.last_candle_ms: int | None = None
        self.exchange_time_ms: int | None = None
        self.last_error: str | None = None
        self.failed_rounds = 0

    def seconds_to_next(self, now: datetime) -> float:
        if self._behind or self._next_poll is None:
            return 0.0
        return max(0.0, (self._next_poll - now).total_seconds())

    def poll(self, now: datetime) -> list[ClosedCandle]:
        if not self._behind and self._next_poll is not None and now < self._next_poll:
            return []
        self._next_poll = now + timedelta(seconds=self.poll_seconds)
        delivered: list[ClosedCandle] = []
        try:
            self._round(delivered)
            if self.failed_rounds:
                log.warning("live feed: the exchange answers again (after %d failed polls)",
                            self.failed_rounds)
            self.last_error, self.failed_rounds = None, 0
        except Exception as error:  # the loop must go on: tried again at the next poll
            self._behind = False
            self.last_error = _one_line(error)
            self.failed_rounds += 1
            if self.failed_rounds == 1:  # one line per outage, not one per poll
                log.warning("live feed: %s; trying again every %g s", self.last_error,
                            self.poll_seconds)
        delivered.sort(key=lambda candle: (candle.ts_ms, candle.pair))
        if delivered:
            self.last_candle_ms = max(self.last_candle_ms or 0, delivered[-1].ts_ms)
        return delivered

    def status(self) -> dict:
        """For /health: the last candle delivered and how far behind the exchange it is."""
        lag = None
        if self.last_candle_ms is not None and self.exchange_time_ms is not None:
            lag = max(0.0, (self.exchange_time_ms - self.last_candle_ms - MINUTE_MS) / 1000)
        return {"last_candle_ms": self.last_candle_ms, "lag_seconds": lag,
                "pairs": sorted(self._next_ts), "last_error": self.last_error,
                "failed_polls": self.failed_rounds}

    def _round(self, delivered: list[ClosedCandle]) -> None:
        wanted = set(self.pairs())
        for pair in set(self._next_ts) - wanted:  # no bot trades it any more
            del self._next_ts[pair]
        now_ms = self.history.exchange_time_ms()
        if now_ms is None:  # checked when the feed is built (see ccxt_history)
            raise DomainError("the exchange does not tell its time",
                              code="EXCHANGE_NOT_SUPPORTED")
        self.exchange_time_ms = now_ms
        budget = self.max_pages_per_poll
        self._behind = False
        for pair in sorted(wanted - set(self._refused)):
            budget = self._pair_round(pair, now_ms, budget, delivered)

    def _pair_round(self, pair: str, now_ms: int, budget: int,
                    delivered: list[ClosedCandle]) -> int:
        if pair not in self._next_ts:  # from the latest candle closed by now
            self._next_ts[pair] = now_ms // MINUTE_MS * MINUTE_MS - MINUTE_MS
        while budget > 0:
            since = self._next_ts[pair]
            if since + MINUTE_MS > now_ms:
                return budget  # the next candle has not closed yet
            budget -= 1
            try:
                received = self.history.candles(pair, "1m", since, self.page)
            except DomainError as error:
                if error.code != "PAIR_NOT_TRADED":
                    raise
                self._refused[pair] = str(error)
                log.warning("live feed: %s; its bots get no candles", error)
                return budget
            closed = _closed(received, since, now_ms)
            window_end = since + self.page * MINUTE_MS
            if not received and window_end <= now_ms:
                # A whole page of time with no candle, all of it closed: an exchange that
                # answers time windows has a gap there; look past it.
                self._next_ts[pair] = window_end
                continue
            for candle in closed:
                delivered.append(ClosedCandle(pair, candle.ts_ms, candle.open, candle.high,
                                              candle.low, candle.close))
            if not closed:
                return budget
            self._next_ts[pair] = closed[-1].ts_ms + MINUTE_MS
            if len(received) < self.page:
                return budget  # that was all the exchange has
        self._behind = True
        return budget

def _closed(received, since: int, now_ms: int) -> list:
    """The candles from ``since`` on that have closed by ``now_ms``, oldest first, each once
    (an exchange may repeat the candle a page starts at)."""
    seen, kept = set(), []
    for candle in sorted(received, key=lambda c: c.ts_ms):
        if candle.ts_ms >= since and candle.ts_ms not in seen:
            seen.add(candle.ts_ms)
            kept.append(candle)
    return [candle for candle in kept if candle.ts_ms + MINUTE_MS <= now_ms]


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())[:300]
    return text if isinstance(error, DomainError) else f"{type(error).__name__}: {text}"
