"""A scheduled audit checkpoint that cannot be signed (its key file missing, or holding no
Ed25519 key) logs one line naming the key by its file's name, never the path to it: the
server's log must not say where a private key lives. ``/health`` shows the task amber with
``SIGNING_KEY_INVALID`` as before. On SQLite and PostgreSQL; the round runs as the
server's schedule runs it."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from adapters.clock import SettableClock
from application.bootstrap import open_runtime
from application.server_settings import ServerSettings
from application.task_health import tasks_health
from tests.api.conftest import T0

pytestmark = pytest.mark.timeout(120)
KEY_NAME = "checkpoint-signing.pem"


@pytest.mark.parametrize("key_content", [None, "not a key at all\n"])
def test_a_checkpoint_that_cannot_be_signed_logs_the_key_s_name_not_its_path(
        persistent_store_url, tmp_path, monkeypatch, caplog, key_content):
    private = tmp_path / "operator-private-keys"
    private.mkdir()
    key = private / KEY_NAME
    if key_content is not None:
        key.write_text(key_content)
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    clock = SettableClock(T0)
    runtime = open_runtime(ServerSettings(
        database_url=persistent_store_url, speed=60,
        checkpoint_file=str(tmp_path / "checkpoints.jsonl"),
        checkpoint_signing_key=str(key)))
    runtime.clock = runtime.trading.clock = runtime.loop.clock = clock
    try:
        getattr(runtime.read_models, "wait_open", lambda: None)()
        runtime.identity.register("alice@example.com", "Correct-Horse-9", verified=True)
        runtime.refresh()  # something audited: a checkpoint is due
        clock.current += timedelta(seconds=1)
        checkpoints = next(s for s in runtime.schedules if s.name == "audit-checkpoints")
        with caplog.at_level(logging.INFO):
            checkpoints.run_once()
        status, detail = tasks_health([checkpoints])
        task = detail["tasks"]["audit-checkpoints"]
        assert (status, task["error"]["code"]) == ("amber", "SIGNING_KEY_INVALID")
        lines = [r.getMessage() for r in caplog.records
                 if "audit-checkpoints failed" in r.getMessage()]
        assert len(lines) == 1, lines
        assert KEY_NAME in lines[0], lines  # the operator knows which key
        assert str(private) not in lines[0] and "operator-private-keys" not in lines[0]
        everything = "\n".join(r.getMessage() for r in caplog.records)
        assert str(private) not in everything
    finally:
        runtime.stop()
