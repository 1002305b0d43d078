"""``tradetape ARGS`` with the live loop's steps written to a file, for bench_live.

    .venv/bin/python scripts/live_probe.py STEPS.jsonl serve --role engine --database URL

Runs the ``tradetape`` command line unchanged (``api.cli.main``) with
``TRADETAPE_STEP_LOG=STEPS.jsonl``: the composition root gives the live loop an observer
(``LiveLoop.on_step``) that appends one JSON line per step (``StepFigures.to_json``): when
it ended (Unix time), how long it took, how many candles it delivered and events it
appended, and each delivered candle's lag (from its close on the server's clock to the end
of the step). The engine role has no HTTP to ask, and these figures exist only inside the
step: the product's own hook hands them out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    os.environ["TRADETAPE_STEP_LOG"] = sys.argv[1]
    from api.cli import main as tradetape

    return tradetape(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
