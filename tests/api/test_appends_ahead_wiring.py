"""``serve`` sends a heavy candle's appends ahead where its engine trades on PostgreSQL (a
pool of connections beside the loop's), as ``TRADETAPE_APPENDS_AHEAD`` says; on SQLite, and
with the setting at 0, a candle is one append at its end."""

from __future__ import annotations

import threading

import pytest

from application.bootstrap import open_runtime
from application.server_settings import ServerSettings

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("ahead", [2000, 0])
def test_an_engine_on_postgresql_sends_ahead_as_the_setting_says(postgres_url, ahead,
                                                                 monkeypatch):
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    runtime = open_runtime(ServerSettings(database_url=postgres_url, speed=60,
                                          appends_ahead=ahead), role="engine")
    try:
        sent = runtime.paper.appends_ahead
        assert (sent.aggregates if sent is not None else 0) == ahead
        thread = sent.send(lambda: [threading.current_thread()]).result()[0] if sent else None
    finally:
        runtime.stop()
    if thread is not None:
        assert thread.name.startswith("tradetape-append")
        assert not thread.is_alive(), "the server's stop ended the appending thread"


def test_a_server_on_sqlite_appends_once_a_candle(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    runtime = open_runtime(ServerSettings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}",
                                          speed=60))
    try:
        assert runtime.paper.appends_ahead is None
    finally:
        runtime.stop()
