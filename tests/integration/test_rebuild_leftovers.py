"""A rebuild killed before its swap leaves shadow tables (``<table>__rebuild``) and, split
between processes, those processes still filling them. The next rebuild of the same
projections drops what is left and ends with the very views of a rebuild that nothing
interrupted; the live tables and other projections' leftovers are never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from application.bootstrap import open_trading
from projections.leftovers import drop_leftovers
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.store import SHADOW
from tests.projection_stubs import a_day_of_trading, backtest, candle_rows, dump, saw_levels
from tests.projection_stubs import view_store as open_views

ROOT = Path(__file__).resolve().parents[2]
ALL = list(PROJECTIONS.values())
# A rebuild shared between two processes, in small batches (they are still at work when
# their parent is killed); it says so once the processes are about to start.
SPLIT = """
import sys
from application.bootstrap import open_trading
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.store import open_view_store
from application.settings import parse_database_url
url = sys.argv[1]
app, store = open_trading(url), open_view_store(parse_database_url(url))
rebuild(app, store, list(PROJECTIONS.values()), workers=2, split=True, database_url=url,
        probe_events=300, batch_size=20, on_plan=lambda plan: print("split", flush=True))
"""


def shadows(store) -> list[str]:
    return sorted(t.name + SHADOW for cls in ALL for t in cls.tables
                  if store.table_exists(t.name + SHADOW))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def url(postgres_url) -> str:
    app = open_trading(postgres_url)
    try:
        a_day_of_trading(app)
        backtest(app, candle_rows(saw_levels(400)), seed="leftovers")
    finally:
        app.close()
    return postgres_url


def test_a_rebuild_after_one_killed_mid_way_ends_with_the_views_of_a_whole_one(url):
    runner = subprocess.Popen([sys.executable, "-c", SPLIT, url], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    orphans: list[int] = []
    store = open_views(url)
    try:
        assert runner.stdout.readline().strip() == "split"
        # Quiet, the processes are seen within 0.05 s of the plan and the whole rebuild
        # ends ~2 s later: look often (a slow look on a loaded machine missed them and
        # killed a finished rebuild), and kill while they are filling the shadow tables.
        plan_seen = time.monotonic()
        deadline = plan_seen + 60
        while len(orphans) < 2 and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.02)
            orphans = children_of(runner.pid)  # (the spawn's resource tracker, the two)
        time.sleep(0.2)  # the processes are filling the shadow tables
        assert runner.poll() is None, (
            f"the rebuild ended {time.monotonic() - plan_seen:.2f} s after its plan, "
            f"before it could be killed (processes seen: {orphans})")
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(10)
        assert shadows(store), "the killed rebuild left no tables: killed after its swap"

        app = open_trading(url)
        try:
            rebuild(app, store, ALL)  # refused with DeadlockDetected before, or mixed rows
            first = dump(store)
            assert shadows(store) == []
            deadline = time.monotonic() + 60
            while any(alive(pid) for pid in orphans) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not any(alive(pid) for pid in orphans), "its processes went on"
            rebuild(app, store, ALL)  # nothing left of the killed one this time
        finally:
            app.close()
        assert dump(store) == first
    finally:
        for pid in [runner.pid, *orphans]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        store.close()


def test_only_the_same_projections_leftovers_are_dropped_never_a_live_table(url):
    app = open_trading(url)
    store = open_views(url)
    try:
        rebuild(app, store, ALL)
        live = dump(store)

        def stop(position: int, head: int) -> None:
            raise KeyboardInterrupt  # an operator's Ctrl-C before the swap

        with pytest.raises(KeyboardInterrupt):
            rebuild(app, store, ALL, on_progress=stop)
        left = shadows(store)
        assert len(left) == sum(len(cls.tables) for cls in ALL)
        audit = [cls for cls in ALL if cls.name == "audit"]
        assert drop_leftovers(store, audit) == ["audit_log__rebuild"]
        assert shadows(store) == [n for n in left if n != "audit_log__rebuild"]
        assert dump(store) == live  # the live tables as they were
        rebuild(app, store, ALL)
        assert shadows(store) == [] and dump(store) == live
    finally:
        store.close()
        app.close()
