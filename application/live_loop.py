"""The live loop of a server: moves the paper market forward as its feeds' candles close,
then brings read models up to date. One thread; stopping it finishes the current step.

Observers (chosen by the composition root): ``after_step`` hears each step's events (the
read models' worker wakes), ``on_step`` each step's figures (:class:`StepFigures`; e.g.
``TRADETAPE_STEP_LOG`` appends them to a file, as ``scripts/bench_live.py`` reads them)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.market_tape import MarketTape, record_candles, record_history
from application.paper_heap import StepSurvivors
from application.paper_trading import PaperTrading
from domain.errors import ConcurrencyConflictError
from domain.ports import Clock, ClosedCandle, MarketFeed

log = logging.getLogger("tradetape.live")


@dataclass
class LoopHealth:
    steps: int = 0
    candles: int = 0
    events: int = 0
    last_step_at: datetime | None = None
    last_step_seconds: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True)
class StepFigures:
    """What one step did, as ``LiveLoop.on_step`` hears it: when it ended (the loop's
    clock), how long it took, the candles it delivered and the events they and the
    periodic tasks appended, and each candle's lag (seconds from its close on the server's
    clock to the step's end), and the processor time the loop's thread spent in it (the
    rest of ``seconds`` it waited: on the database, on a core, on the GIL), and the
    appending thread (``application/appends_ahead.py``: the appends sent ahead)."""

    ended_at: datetime
    seconds: float
    candles: int
    events: int
    lags: tuple[float, ...]
    processor: float = 0.0
    appending: float = 0.0

    def to_json(self) -> str:
        """One line of a step log (``TRADETAPE_STEP_LOG``): ``t`` the end as Unix time,
        ``s`` the seconds, ``n`` the candles, ``e`` the events, ``lags``, ``c`` the
        thread's processor seconds, ``a`` the appending thread's."""
        return json.dumps({"t": round(self.ended_at.timestamp(), 3),
                           "s": round(self.seconds, 4), "n": self.candles,
                           "e": self.events, "lags": [round(lag, 3) for lag in self.lags],
                           "c": round(self.processor, 4), "a": round(self.appending, 4)})


class LiveLoop:
    def __init__(self, clock: Clock, feeds: Sequence[MarketFeed], paper: PaperTrading,
                 after_step: Callable[[int], None] = lambda events: None,
                 max_wait: float = 1.0,
                 periodic: Sequence[Callable[[datetime], int]] = (),
                 tape: MarketTape | None = None,
                 on_step: Callable[[StepFigures], None] | None = None):
        self.clock, self.feeds, self.paper = clock, list(feeds), paper
        # run after each step's candles, each deciding itself whether it is due: local
        # work only. Nothing that waits on the network (an exchange's reconciliation,
        # Stripe's sweep) runs here: those run beside the loop
        # (bootstrap_schedules._beside_the_loop)
        self.periodic = list(periodic)
        self.after_step, self.max_wait = after_step, max_wait
        self.on_step = on_step  # hears every step's figures, after ``after_step``
        self.health = LoopHealth()
        self.tape = tape  # the candles delivered, for charts and marks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        """Deliver every candle that closed since the last step; returns events appended."""
        started, processor = time.monotonic(), time.thread_time()
        appending = self._appending()
        now = self.clock.now()
        events, closes = 0, []
        for feed in self.feeds:
            if self.tape is not None and self.health.steps == 0:
                record_history(self.tape, feed, now)
            delivered = feed.poll(now)
            if self.tape is not None:
                record_candles(self.tape, feed, delivered, now)
            closes += _closes(feed, delivered, now)
            for candle in delivered:
                events += self.paper.on_candle(candle.pair, candle.ts_ms, candle.open,
                                               candle.high, candle.low, candle.close, now)
        for task in self.periodic:
            events += task(now)
        self.after_step(events)
        h = self.health
        h.steps, h.candles, h.events = h.steps + 1, h.candles + len(closes), h.events + events
        h.last_step_at, h.last_step_seconds = now, time.monotonic() - started
        if self.on_step is not None:
            ended = self.clock.now()
            self.on_step(StepFigures(ended, time.monotonic() - started, len(closes), events,
                                     tuple((ended - c).total_seconds() for c in closes),
                                     time.thread_time() - processor,
                                     self._appending() - appending))
        return events

    def _appending(self) -> float:
        """The appending thread's processor seconds so far (0 without one)."""
        ahead = getattr(self.paper, "appends_ahead", None)
        return ahead.processor if ahead is not None else 0.0

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
                self.health.last_error = None
            except ConcurrencyConflictError as error:
                # A race, not a fault: another writer (a command, billing, the risk limits)
                # saved an aggregate of a periodic task first (a candle refused so steps
                # again itself: ``PaperTrading.on_candle``); the next step goes on from there.
                self.health.last_error = f"{type(error).__name__}: {error}"
                log.warning("live loop step refused (%s): %s; the next candle goes on from "
                            "the log", error.code, error)
            except Exception as error:  # the loop must survive a bad step; /health shows it
                self.health.last_error = f"{type(error).__name__}: {error}"
                log.exception("live loop step failed")
            now = self.clock.now()
            wait = min([f.seconds_to_next(now) for f in self.feeds] + [self.max_wait])
            self._stop.wait(max(wait, 0.01))

    def start(self) -> None:
        # a server's loop runs for hours: its engines' state is kept out of the
        # collector's passes (tests step a loop without starting it: left alone)
        if self.paper.survivors is None:
            self.paper.survivors = StepSurvivors()
        self._thread = threading.Thread(target=self.run, name="tradetape-live", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the current step finish (its events are saved), then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def _closes(feed: Any, candles: list[ClosedCandle], now: datetime) -> list[datetime]:
    """When each candle closed on the server's clock: as a replayed feed's spans say, else
    when it was delivered (a live feed gives a candle once it closed)."""
    spans = getattr(feed, "spans", None)
    if isinstance(spans, list) and len(spans) == len(candles):
        return [closed for _, closed in spans]
    return [now] * len(candles)
