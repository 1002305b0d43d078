"""A single-process start (SQLite, ``serve`` alone) resumes every bot with the garbage
collector paused, and keeps what it built out of every later collection, as an engine
worker's first take does (application/collector.py): a collection after the start then
walks none of the bots' engines again (measured: README, "The garbage collector at a
start")."""

from __future__ import annotations

import gc

from application import collector
from application.server_settings import ServerSettings


def test_a_single_process_start_resumes_its_bots_paused_then_freezes_them(tmp_path,
                                                                          monkeypatch):
    from application.bootstrap import open_runtime

    monkeypatch.setattr(collector._PAUSES, "frozen", False)  # another test's start froze
    runtime = open_runtime(ServerSettings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}",
                                          speed=60))
    resume, seen = runtime.paper.resume, {}

    def watched_resume() -> None:
        seen["collector on while resuming"] = gc.isenabled()
        resume()
        seen["built"] = [{"engine": n} for n in range(1000)]  # what a resume leaves alive

    monkeypatch.setattr(runtime.paper, "resume", watched_resume)
    before = gc.get_freeze_count()
    try:
        runtime.start()
        frozen = gc.get_freeze_count()
    finally:
        runtime.stop()
        collecting = gc.isenabled()  # (a step under way may pause it: after the stop)
        gc.unfreeze()

    assert seen["collector on while resuming"] is False
    assert frozen >= before + len(seen["built"])
    assert collecting
