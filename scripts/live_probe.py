"""``tradetape ARGS`` with the live loop's steps written to a file, for bench_live.

    .venv/bin/python scripts/live_probe.py STEPS.jsonl serve --role engine --database URL

Runs the ``tradetape`` command line unchanged (``api.cli.main``), after wrapping
``LiveLoop.step`` so that each step appends one JSON line to ``STEPS.jsonl``: when it ended
(Unix time), how long it took, how many candles it delivered and events it appended, and
each delivered candle's lag (from its close on the server's clock to the end of the step).
The engine role has no HTTP to ask, and these figures exist only inside the step: the
harness measures them here rather than through a hook in the product.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def install(path: str) -> None:
    from application.live_loop import LiveLoop

    out = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    real_step = LiveLoop.step

    def step(self) -> int:
        began = time.monotonic()
        events = real_step(self)
        took = time.monotonic() - began
        now = self.clock.now()
        # a replayed feed's spans are the (open, close) of the candles its last poll gave
        spans = [span for feed in self.feeds for span in getattr(feed, "spans", [])]
        out.write(
            json.dumps(
                {
                    "t": round(time.time(), 3),
                    "s": round(took, 4),
                    "n": len(spans),
                    "e": events,
                    "lags": [round((now - closed).total_seconds(), 3) for _, closed in spans],
                }
            )
            + "\n"
        )
        return events

    LiveLoop.step = step


def main() -> int:
    install(sys.argv[1])
    from api.cli import main as tradetape

    return tradetape(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
