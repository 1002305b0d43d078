"""A ``tradetape projections run`` process killed with SIGKILL in the middle of its work, then
started again, ends with the very views of a rebuild: no event applied twice or skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.clock import SequentialIds
from api.cli import main
from application.bootstrap import open_trading
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from tests.projection_stubs import a_day_of_trading, backtest, candle_rows, dump, saw_levels
from tests.projection_stubs import view_store as open_views

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_a_killed_runner_resumes_to_the_views_of_a_rebuild(url, capsys):
    app = open_trading(url, ids=SequentialIds("app"))
    try:
        a_day_of_trading(app)
        backtest(app, candle_rows(saw_levels(300)), seed="kill")
        head = app.recorder.max_notification_id()
    finally:
        app.close()
    runner = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "projections", "run", "--batch-size", "40",
         "--poll", "0.1", "--database", url],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = open_views(url)
    try:
        _wait_until_some_work_is_done(store, runner, head)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
        at_kill = {name: row.position for name, row in store.tracking().items()}
        assert 0 < min(at_kill.values()) < head, at_kill

        assert main(["projections", "run", "--once", "--database", url]) == 0
        capsys.readouterr()
        resumed = dump(store)
        assert {row.position for row in store.tracking().values()} == {head}

        app = open_trading(url)
        try:
            rebuild(app, store, list(PROJECTIONS.values()))
        finally:
            app.close()
        assert dump(store) == resumed
        assert len(resumed["audit_log"]) == head
    finally:
        if runner.poll() is None:
            runner.kill()
        store.close()


def _wait_until_some_work_is_done(store, runner, head: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert runner.poll() is None, runner.stderr.read().decode()
        rows = store.tracking()
        if len(rows) == len(PROJECTIONS) and min(r.position for r in rows.values()) > head // 5:
            return
        time.sleep(0.005)
    pytest.fail("the runner made no progress in 60 s")
