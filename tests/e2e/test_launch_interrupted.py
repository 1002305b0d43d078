"""Ctrl-C in an end-to-end test leaves no ``tradetape serve`` behind: a second Ctrl-C while
``launch``'s teardown waits for the first server's graceful exit (impatient, or as an IDE's
stop button sends it) still ends every server the test launched."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Run by a pytest of its own: two servers, then a wait for the Ctrl-C.
PROBE = '''
import json, os, time
from pathlib import Path
from tests.e2e.conftest import launch  # noqa: F401 (the fixture)

def test_two_servers_then_ctrl_c(launch):
    first, second = launch(), launch()
    Path(os.environ["PROBE_OUT"]).write_text(json.dumps({
        "pids": [first.process.pid, second.process.pid],
        "first_port": first.port}))
    time.sleep(300)
'''


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_second_ctrl_c_during_teardown_leaves_no_server_running(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    runner = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_probe.py"), "-q", "-n", "0",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PROBE_OUT": str(out), "PYTHONPATH": str(ROOT)},
        start_new_session=True,  # the Ctrl-Cs reach pytest alone, as an IDE sends them
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids: list[int] = []
    try:
        assert wait_for(out.exists, 180), runner.stdout.read() if runner.poll() else ""
        probe = json.loads(out.read_text())
        pids = probe["pids"]
        os.kill(runner.pid, signal.SIGINT)  # the teardown starts stopping the first server
        assert wait_for(lambda: not listening(probe["first_port"]), 60)  # (SIGTERM'd)
        os.kill(runner.pid, signal.SIGINT)  # ...and the user presses Ctrl-C again
        runner.wait(60)
        assert wait_for(lambda: not any(alive(pid) for pid in pids), 30), \
            "a server the test launched is still running"
    finally:
        for pid in [runner.pid, *pids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
