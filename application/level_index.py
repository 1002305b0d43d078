"""Which markets of a pair a candle reaches: an index of their resting levels across bots.

A market (an account's venue on a pair and the bots trading on it) acts on a candle only
when the candle reaches one of its levels: the highest price at which a fall fills or
triggers something (a buy limit, a stop), the lowest at which a rise does (a take profit,
a trailing high), the same band the backtest skips candles by (``trigger_band``). Markets
whose bots act on every close (a bot without a deal opens one there) are always reached.
A candle that stays strictly inside a market's band changes nothing there, so a step walks
only the markets this index returns, in the order they were opened (the order a step
across all of them takes, so the log is the same as walking every market).

The bands are kept until a market changes: the runner puts a market back after each step
it took, and after anything else touched it (see ``PaperTrading``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable
from decimal import Decimal
from typing import NamedTuple


class Band(NamedTuple):
    below: Decimal | None  # reached by a low at or under it
    above: Decimal | None  # reached by a high at or over it
    every_close: bool  # reached by every candle


def band_reaches(band: Band, low: Decimal, high: Decimal) -> bool:
    """Whether a candle from ``low`` to ``high`` reaches ``band`` (``LevelIndex.reached``'s
    rule for one market)."""
    return (band.every_close or (band.below is not None and band.below >= low)
            or (band.above is not None and band.above <= high))


class LevelIndex:
    """The bands of one pair's markets, by key; ``order`` says which market comes first."""

    def __init__(self) -> None:
        self._bands: dict[Hashable, tuple[int, Band]] = {}
        self._sorted: tuple[list, list, list, list, list] | None = None  # built when asked

    def __len__(self) -> int:
        return len(self._bands)

    def put(self, key: Hashable, order: int, band: Band) -> None:
        if self._bands.get(key) == (order, band):
            return  # unchanged: the sorted lists stay valid
        self._bands[key] = (order, band)
        self._sorted = None

    def drop(self, key: Hashable) -> None:
        if self._bands.pop(key, None) is not None:
            self._sorted = None

    def reached(self, low: Decimal, high: Decimal) -> list[Hashable]:
        """The keys of the markets a candle from ``low`` to ``high`` reaches, in order."""
        belows, below_keys, aboves, above_keys, always = self._lists()
        hits = set(below_keys[bisect_left(belows, low):])  # below >= low
        hits.update(above_keys[:bisect_right(aboves, high)])  # above <= high
        hits.update(always)
        return sorted(hits, key=lambda key: self._bands[key][0])

    def _lists(self) -> tuple[list, list, list, list, list]:
        if self._sorted is None:
            falls = sorted((b.below, order, key) for key, (order, b) in self._bands.items()
                           if b.below is not None)
            rises = sorted((b.above, order, key) for key, (order, b) in self._bands.items()
                           if b.above is not None)
            always = [key for key, (_, b) in self._bands.items() if b.every_close]
            self._sorted = ([level for level, _, _ in falls], [key for _, _, key in falls],
                            [level for level, _, _ in rises], [key for _, _, key in rises],
                            always)
        return self._sorted
