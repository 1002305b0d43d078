"""``tradetape serve --nice N`` (issue 15): an operator runs the engine and projections roles
at a lower priority so that the api's event loop gets a core first. Real ``serve``
processes; the kernel says what niceness each of their threads runs at."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import TRADETAPE, free_port, server_env

STARTED = {"engine": "Tradetape engine worker", "projections": "Tradetape projections:",
           "api": "Tradetape on http://"}


def thread_niceness(pid: int) -> set[int]:
    """The niceness of every thread of ``pid`` (field 19 of /proc/PID/task/TID/stat)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        found.add(int(stat[stat.rindex(")") + 2:].split()[16]))
    return found


@contextmanager
def serving(tmp_path, args: list[str], **env: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``tradetape serve ARGS`` until its first line (yielded with it), then SIGTERM."""
    process = subprocess.Popen([str(TRADETAPE), "serve", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=server_env(**env),
                               cwd=tmp_path)
    try:
        yield process, process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0


@pytest.mark.parametrize("role", ["engine", "projections", "api"])
def test_a_role_started_with_nice_7_runs_at_niceness_7(postgres_url, tmp_path, role):
    args = ["--role", role, "--nice", "7", "--database", postgres_url, "--port",
            str(free_port())]
    with serving(tmp_path, args) as (process, line):
        assert line.startswith(STARTED[role]) and line.rstrip().endswith("; niceness 7"), line
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == 7
        assert thread_niceness(process.pid) == {7}  # its workers' threads too


def test_health_says_the_role_and_niceness_it_runs_at(postgres_url, tmp_path):
    port = free_port()
    args = ["--role", "api", "--nice", "7", "--database", postgres_url, "--port", str(port)]
    with serving(tmp_path, args) as (_, line):
        assert line.startswith(STARTED["api"]), line
        process_part = _health(port)["process"]
    assert process_part["status"] == "green"
    assert process_part["role"] == "api"
    assert "pid" not in process_part  # (an administrator's /health says it)
    assert (process_part["niceness"], process_part["niceness_setting"]) == (7, 7)


def _health(port: int) -> dict:
    """``/health`` once the server answers (it prints its line before it listens)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        except httpx.TransportError:
            assert time.monotonic() < deadline, "/health never answered"
            time.sleep(0.1)


def test_nice_from_the_environment(postgres_url, tmp_path):
    args = ["--role", "projections", "--database", postgres_url]
    with serving(tmp_path, args, TRADETAPE_NICE="12") as (process, line):
        assert line.startswith(STARTED["projections"]) and "niceness 12" in line, line
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == 12


def _refused(tmp_path, args: list[str], env: dict[str, str] | None = None,
             preexec_fn=None) -> str:
    database = tmp_path / "one.sqlite"
    run = subprocess.run([str(TRADETAPE), "serve", *args, "--database",
                          f"sqlite:///{database}", "--port", str(free_port())],
                         capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
                         env=server_env(**(env or {})), preexec_fn=preexec_fn)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert not database.exists()  # refused before anything was opened
    return lines[0]


@pytest.mark.parametrize("args, env", [(["--nice", "20"], None), (["--nice", "-21"], None),
                                       ([], {"TRADETAPE_NICE": "low"})])
def test_a_niceness_out_of_range_is_refused_by_name(tmp_path, args, env):
    line = _refused(tmp_path, args, env)
    assert "INVALID_SETTING" in line and ("nice" in line.lower()), line


def _without_cap_sys_nice() -> None:
    """In the child before exec: as an operator's unprivileged account, which may lower
    its priority but not raise it (root keeps CAP_SYS_NICE unless its bounding set drops
    it)."""
    resource = __import__("resource")
    resource.setrlimit(resource.RLIMIT_NICE, (0, 0))
    if os.geteuid() == 0:
        pr_capbset_drop, cap_sys_nice = 24, 23
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_capbset_drop, cap_sys_nice, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_SYS_NICE)")


def test_a_negative_niceness_without_the_right_is_refused_by_name(tmp_path):
    line = _refused(tmp_path, ["--nice", "-5"], preexec_fn=_without_cap_sys_nice)
    assert line.startswith("error: NICE_NOT_PERMITTED"), line
    assert "niceness -5" in line
