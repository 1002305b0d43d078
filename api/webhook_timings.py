"""Where a webhook signal's time goes, phase by phase: a debug breakdown switched on with
``TRADETAPE_WEBHOOK_TIMINGS=1`` (off by default: nothing is measured or logged then).

Each signal then writes one line on the ``tradetape.webhooks.timings`` logger:

    webhook timings (ms): read=0.05 queued=0.21 lock=0.01 check=0.62/0.60 ... total=4.10

A phase ends where the next begins; ``wall/cpu`` for phases on one thread, where a wall time
well above the CPU time is waiting (for a lock, the disk, the interpreter's lock held by
another thread). ``scripts/bench_webhooks.py --timings`` reads these lines back.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping

ENV_NAME = "TRADETAPE_WEBHOOK_TIMINGS"
LINE_PREFIX = "webhook timings (ms):"
log = logging.getLogger("tradetape.webhooks.timings")


def timings_on(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the breakdown is switched on; if so, its lines pass the server's log level
    (warnings and above otherwise)."""
    value = (os.environ if environ is None else environ).get(ENV_NAME, "").strip().lower()
    on = value in ("1", "true", "yes", "on")
    if on:
        log.setLevel(logging.INFO)
        if not logging.getLogger().handlers and not log.handlers:  # the text format: its
            log.addHandler(logging.StreamHandler(sys.stderr))  # root writes warnings only
            log.propagate = False
        if _time_collections not in gc.callbacks:
            gc.callbacks.append(_time_collections)
    return on


_collecting: list[float] = []


def _time_collections(phase: str, info: dict) -> None:
    """The collector stops every thread while it runs: each full pass (the oldest
    generation) gets a line of its own, ``webhook timings (ms): gc2=<wall>/<cpu>``."""
    if info.get("generation") != 2:
        return
    if phase == "start":
        _collecting[:] = [time.perf_counter(), time.thread_time()]
    elif _collecting:
        cpu, wall = time.thread_time() - _collecting.pop(), time.perf_counter() - _collecting.pop()
        log.info("%s gc2=%.2f/%.2f", LINE_PREFIX, wall * 1000, cpu * 1000)


class SignalTimings:
    """A stopwatch for one signal: ``lap(phase)`` ends ``phase`` now."""

    def __init__(self) -> None:
        self._started = self._wall = time.perf_counter()
        self._thread, self._cpu = threading.get_ident(), time.thread_time()
        self.phases: dict[str, tuple[float, float | None]] = {}

    def lap(self, phase: str) -> None:
        wall, cpu, thread = time.perf_counter(), time.thread_time(), threading.get_ident()
        # CPU time is per thread: across a hand-over to another thread it says nothing
        spent = (cpu - self._cpu) * 1000 if thread == self._thread else None
        self.phases[phase] = ((wall - self._wall) * 1000, spent)
        self._wall, self._cpu, self._thread = wall, cpu, thread

    def line(self) -> str:
        parts = [f"{name}={wall:.2f}" + ("" if cpu is None else f"/{cpu:.2f}")
                 for name, (wall, cpu) in self.phases.items()]
        total = (self._wall - self._started) * 1000
        return f"{LINE_PREFIX} {' '.join(parts)} total={total:.2f}"

    def log(self) -> None:
        log.info("%s", self.line())


def no_lap(phase: str) -> None:
    """Timings off: a phase ends unmeasured."""
