"""``scripts/start`` passes every flag to ``tradetape serve`` (it used to hand its first
argument to the set-up script as pip extras, and ``--port 8100`` died in pip)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_start_passes_serve_flags_through():
    done = subprocess.run(["bash", "scripts/start", "--port", "8100", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: tradetape serve" in done.stdout and "--port" in done.stdout
    assert "pip" not in done.stderr
