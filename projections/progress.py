"""Progress of a long catch-up or rebuild as plain text on stderr: position, events/s and the
time left, rewritten in place on a terminal and one line every few seconds otherwise (a log
file or CI gets a readable trail rather than a bar)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class TextProgress:
    """``progress(position, head)``; call ``done()`` at the end."""

    def __init__(self, label: str = "rebuild", *, start: int = 0,
                 stream: TextIO | None = None, every: float | None = None):
        """``start``: the position the run started after (0 for a rebuild)."""
        self.label, self.stream = label, stream or sys.stderr
        self.live = self.stream.isatty()
        self.every = every if every is not None else (0.25 if self.live else 5.0)
        self.started = time.perf_counter()
        self.first = start
        self.shown_at = 0.0
        self.last = ""

    def __call__(self, position: int, head: int) -> None:
        now = time.perf_counter()
        if now - self.shown_at < self.every:
            return
        self.shown_at = now
        self.show(line(self.label, position, head, position - self.first, now - self.started))

    def show(self, text: str) -> None:
        if self.live:
            self.stream.write("\r" + text.ljust(len(self.last)))
        else:
            self.stream.write(text + "\n")
        self.last = text
        self.stream.flush()

    def done(self) -> None:
        if self.live and self.last:
            self.stream.write("\r" + " " * len(self.last) + "\r")
            self.stream.flush()


def line(label: str, position: int, head: int, done: int, seconds: float) -> str:
    """``rebuild 120,000/540,171 (22%) 48,210 events/s, 8.7s left``."""
    rate = done / seconds if seconds > 0 else 0.0
    share = f" ({position / head:.0%})" if head else ""
    left = f", {(head - position) / rate:.1f}s left" if rate and head >= position else ""
    return f"{label} {position:,}/{head:,}{share} {rate:,.0f} events/s{left}"
