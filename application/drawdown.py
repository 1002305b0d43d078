"""Max drawdown of equity = realized P/L + the open deal marked at each candle's close.

Between two engine steps the open deal does not change, so equity over the skipped candles
is ``a + units × close``: a vectorised pass finds the worst point, which is then computed
exactly in Decimal.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from domain.money import ZERO
from domain.ports import CandleSeries

# The ufuncs' own reductions: ``ndarray.min()`` goes through two Python wrappers first.
_lowest, _highest = np.minimum.reduce, np.maximum.reduce


class DrawdownTracker:
    """``curve`` (with ``keep_curve``): equity at every candle's close as floats, for
    pictures; the figures themselves are worked out in Decimal whether it is kept or not."""

    def __init__(self, candles: CandleSeries, keep_curve: bool = False,
                 exact_points: int | None = None):
        """``exact_points``: also keep the exact equity (Decimal) at about that many evenly
        spaced candles and the last one, in ``points`` (index: equity)."""
        self.candles = candles
        self.peak = ZERO  # equity starts at 0
        self.max_drawdown = ZERO
        self._seen = (ZERO, ZERO, 0.0, 0.0)  # see _as_floats
        self.curve = np.zeros(len(candles)) if keep_curve else None
        n = len(candles)
        self.every = max(1, -(-n // exact_points)) if exact_points else 0
        self.points: dict[int, Decimal] | None = {} if exact_points else None

    def _keep(self, start: int, end: int, realized: Decimal, state) -> None:
        """The exact equity at the kept candles of ``start..end-1``."""
        if self.points is None:
            return
        last = len(self.candles) - 1
        first = -(-start // self.every) * self.every
        for i in [*range(first, end, self.every), *([last] if start <= last < end else [])]:
            self.points[i] = self._equity(i, realized, state)

    def _equity(self, i: int, realized: Decimal, state, close: Decimal | None = None) -> Decimal:
        if state is None:
            return realized
        units, spent = state
        price = close if close is not None else self.candles.exact_close(i)
        return realized + units * price - spent

    def sample(self, i: int, realized: Decimal, state, close: Decimal) -> None:
        """Equity at candle ``i``'s close, after everything that happened in it."""
        equity = self._equity(i, realized, state, close)
        if self.points is not None and (i % self.every == 0 or i == len(self.candles) - 1):
            self.points[i] = equity
        self.peak = max(self.peak, equity)
        self.max_drawdown = max(self.max_drawdown, self.peak - equity)
        if self.curve is not None:
            self.curve[i] = equity

    def _cannot_matter(self, lowest: float, highest: float) -> bool:
        """True when no equity between ``lowest`` and ``highest`` can be a new peak or a
        deeper drawdown, with a margin far wider than float rounding (then it is worked
        out exactly)."""
        peak, deepest = self._as_floats()
        margin = 1e-9 * (1.0 + abs(peak) + abs(lowest) + abs(highest))
        return highest < peak - margin and peak - lowest < deepest - margin

    def _as_floats(self) -> tuple[float, float]:
        """The peak and the max drawdown as floats, made again only when one of them changed
        (a Decimal's float is made through its text; they change far less often than a
        step skips candles)."""
        seen = self._seen
        if seen[0] is not self.peak or seen[1] is not self.max_drawdown:
            seen = self._seen = (self.peak, self.max_drawdown,
                                 float(self.peak), float(self.max_drawdown))
        return seen[2], seen[3]

    def skip(self, start: int, end: int, realized: Decimal, state) -> None:
        """Candles ``start..end-1`` passed with nothing happening."""
        if start >= end:
            return
        self._keep(start, end, realized, state)
        if state is None:
            if self.curve is not None:
                self.curve[start:end] = float(realized)
            return  # equity is flat at `realized`, already sampled
        units, spent = state
        closes = self.candles.close[start:end]
        base, per_unit = float(realized - spent), float(units)
        if self.curve is not None:
            self.curve[start:end] = base + per_unit * closes
        if self._cannot_matter(base + per_unit * float(_lowest(closes)),
                               base + per_unit * float(_highest(closes))):
            return
        equity = base + per_unit * closes
        peak_float, deepest_float = self._as_floats()
        running_peak = np.maximum(np.maximum.accumulate(equity), peak_float)
        worst = int(np.argmax(running_peak - equity))
        if running_peak[worst] - equity[worst] >= deepest_float:
            best_before = int(np.argmax(equity[: worst + 1]))
            peak = max(self.peak, self._equity(start + best_before, realized, state))
            low = self._equity(start + worst, realized, state)
            self.max_drawdown = max(self.max_drawdown, peak - low)
        top = int(np.argmax(equity))
        if equity[top] >= self._as_floats()[0]:
            self.peak = max(self.peak, self._equity(start + top, realized, state))
