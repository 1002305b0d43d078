"""What a server's engine steps leave alive, kept out of the garbage collector's passes.

WHY: the engines' state (every followed bot's deal, open orders, venue: ~600,000 objects
at 10,000 bots) lives for hours, yet each full pass of the cyclic collector walks all of it
again: 450-600 ms of processor time at 10,000 bots (``scripts/bench_step.py``, a full pass
after 200 candles), landing in whichever step, quiet or not, the allocations trigger it.
And the first allocation after a step's pause (``collector_paused``) collects everything
the step left young, a pass as long as the step was heavy.

So at the end of each step, still inside the pause, what is alive is moved to the
collector's permanent generation (``gc.freeze``: a list splice, whatever the size): later
passes walk only what was made since. Reference counting still frees frozen objects; only
garbage in cycles stays. A step makes none (the full pass above finds 0 unreachable), but
whatever else the process holds at that moment is frozen with it (an API request in
flight, with ``--role all``), so once the frozen heap has doubled since the last look it is
thawed and collected (one full pass, then frozen again): what stays is bounded by the
live heap, and a heap that stops growing is never walked again.
"""

from __future__ import annotations

import gc

GROWTH = 2.0  # the frozen heap grown this many times since the last full pass: one more
SMALL = 100_000  # objects: a heap this small is frozen, but walked again only past twice it
EVERY = 3600  # steps (an hour at a candle a second): the frozen heap counted at least
# this often, for what survived passes between steps (see ``after_step``)
SPACING = 60  # steps at least between two counts the free estimate asks for: it counts
# churn too, and a heap hovering under the limit would otherwise be counted at every step


class StepSurvivors:
    """``after_step`` freezes what is alive; ``full_passes`` counts the thaws it took."""

    def __init__(self, growth: float = GROWTH, small: int = SMALL, every: int = EVERY,
                 spacing: int = SPACING) -> None:
        self.growth, self.small, self.every, self.spacing = growth, small, every, spacing
        self._steps = 0
        self._counted_at = 0  # the step of the last exact count
        self._after_pass: int | None = None  # frozen objects after the last full pass
        self._added = 0  # at most this many frozen since (counted exactly when it matters)
        self.full_passes = 0

    def after_step(self) -> None:
        """Call with the collector paused, at the end of a step."""
        # the youngest generation's count: objects made and not freed since the last
        # freeze or pass, read for free: the step's survivors (it ran paused), not what
        # survived a pass between steps (the loop's, a request's): counted every ``every``
        self._added += gc.get_count()[0]
        self._steps += 1
        gc.freeze()
        if self._after_pass is None:  # (the first step: what the process started with)
            self._after_pass, self._added = gc.get_freeze_count(), 0
            return
        limit = self.growth * max(self._after_pass, self.small)
        due = self._steps % self.every == 0 or (
            self._after_pass + self._added > limit
            and self._steps - self._counted_at >= self.spacing)
        if not due:
            return
        self._counted_at = self._steps
        # WHY not at every step: counting walks the whole frozen list, scattered over the
        # heap (76 ms of processor time at 640,000 objects, 10,000 bots: bench_step.py)
        frozen = gc.get_freeze_count()
        self._added = frozen - self._after_pass
        if frozen > limit:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._after_pass, self._added = gc.get_freeze_count(), 0
            self.full_passes += 1
