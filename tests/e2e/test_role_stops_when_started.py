"""A role process stopped (SIGTERM, as a supervisor does) right after it said it started:
a clean stop, exit 0 and no traceback, not death by the signal (exit -15). Real
``tradetape serve --role`` processes on PostgreSQL, each told to stop the moment its
"started" line is read."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.e2e.conftest import TRADETAPE, free_port, server_env

STARTED = {"engine": "Tradetape engine worker", "projections": "Tradetape projections:",
           "api": "Tradetape on http://"}


@pytest.mark.parametrize("role", ["engine", "projections", "api"])
def test_a_role_told_to_stop_as_it_says_started_stops_cleanly(postgres_url, tmp_path, role):
    for _ in range(3):  # the stop lands at a different moment of the start each time
        process = subprocess.Popen(
            [str(TRADETAPE), "serve", "--role", role, "--database", postgres_url,
             "--port", str(free_port())],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env(),
            cwd=tmp_path)
        try:
            line = process.stdout.readline()
            assert line.startswith(STARTED[role]), line + process.stderr.read()
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, f"exit {process.returncode}: {out}{err}"
        assert "Traceback" not in out + err, out + err
