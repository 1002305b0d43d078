"""A market feed that replays a recorded candle series as if it were live, looping.

At ``speed`` 60 one minute of market passes per second. Which candle is "now" follows from
the clock alone (no saved position), so a restarted server picks the feed up where the
clock says it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.marketdata.csv_candles import Candles
from domain.ports import ClosedCandle


class ReplayFeed:
    def __init__(self, candles: Candles, pair: str, *, speed: float, epoch: datetime):
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        self.candles, self.pair, self.speed, self.epoch = candles, pair, speed, epoch
        self.interval_s = (candles.interval_ms or 60_000) / 1000
        self._delivered: int | None = None  # absolute count of closed candles delivered
        # (opened, closed) on the server's clock of each candle the last poll returned
        self.spans: list[tuple[datetime, datetime]] = []

    def start_at(self, index: int, moment: datetime) -> None:
        """Re-anchor the replay so that candle ``index`` closes at ``moment``: the market a
        server shows is then chosen from data already in the log (e.g. when the demo began),
        and a restart continues it."""
        self.epoch = moment - timedelta(seconds=(index + 1) * self.interval_s / self.speed)
        self._delivered = None

    def closed_count(self, now: datetime) -> int:
        """How many candles have closed since ``epoch`` at this speed (across loops)."""
        elapsed = max(0.0, (now - self.epoch).total_seconds()) * self.speed
        return int(elapsed // self.interval_s)

    def seconds_to_next(self, now: datetime) -> float:
        """0 while a candle that closed is not delivered yet (a step that outlasted a
        candle: the loop must not sleep until the next close with it waiting, as it did,
        adding up to a candle's length to that candle's lag), else until the next close."""
        if self._delivered is not None and self.closed_count(now) > self._delivered:
            return 0.0
        elapsed = max(0.0, (now - self.epoch).total_seconds()) * self.speed
        return (self.interval_s - elapsed % self.interval_s) / self.speed

    def poll(self, now: datetime, max_catch_up: int = 1000) -> list[ClosedCandle]:
        """Candles that closed since the last poll (at most ``max_catch_up``: after a long
        stop, only the latest ones are replayed, as a live exchange would not resend)."""
        count = self.closed_count(now)
        start = count - 1 if self._delivered is None else self._delivered
        start = max(start, count - max_catch_up)
        self._delivered = count
        indexes = range(max(start, 0), count)
        self.spans = [self._span(k) for k in indexes]
        return [self._candle(k) for k in indexes]

    def recent_candles(self, now: datetime, count: int) -> list[tuple[datetime, datetime,
                                                                ClosedCandle]]:
        """The ``count`` candles that closed before the latest one (what a first ``poll``
        does not deliver), with their spans: a chart's past after a restart."""
        latest = self.closed_count(now) - 1
        return [(*self._span(k), self._candle(k))
                for k in range(max(latest - count, 0), max(latest, 0))]

    def _span(self, absolute: int) -> tuple[datetime, datetime]:
        step = timedelta(seconds=self.interval_s / self.speed)
        return self.epoch + step * absolute, self.epoch + step * (absolute + 1)

    def _candle(self, absolute: int) -> ClosedCandle:
        i = absolute % len(self.candles)
        o, h, low, c = self.candles.exact(i)
        return ClosedCandle(self.pair, int(self.candles.timestamps[i]), o, h, low, c)
