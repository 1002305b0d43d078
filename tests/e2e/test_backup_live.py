"""Acceptance: ``backup create`` while a server's paper bots trade, ``backup restore`` into
an empty PostgreSQL database, rebuild: every read-model table equals the source's at the
backup's position, and ``audit verify`` passes. And the server's own scheduled backups."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from application.backup_retention import time_of
from application.bootstrap import open_trading
from tests.backup_stubs import log_rows, views_at, views_of
from tests.conftest import POSTGRES_URL, require_postgres
from tests.e2e.conftest import (
    BOT,
    TRADETAPE,
    create_bot,
    new_user,
    server_env,
    start_bot,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A second, empty PostgreSQL schema (the restore's target)."""
    require_postgres()
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    env = parse_database_url(POSTGRES_URL).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def tradetape(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TRADETAPE), *args], capture_output=True, text=True,
                          env=server_env(), timeout=120, check=False)


def head(url: str) -> int:
    app = open_trading(url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


@pytest.mark.parametrize("source_kind", ["postgres", "sqlite"])
def test_a_backup_taken_during_live_trading_restores_into_postgres_equal_at_its_position(
        source_kind, launch, request, empty_postgres, tmp_path):
    source = (request.getfixturevalue("postgres_url") if source_kind == "postgres"
              else f"sqlite:///{tmp_path / 'live.sqlite'}")
    server = launch(database=source)
    token = new_user(server, "trader@example.com")
    bots = [create_bot(server, token, name=f"scalper {i}") for i in range(2)]
    for bot in bots:
        start_bot(server, token, bot)
    wait_for("a deal opened", lambda: server.gql(BOT, {"id": bots[0]}, token)["bot"]
             ["dealsOpened"] >= 1)

    made = tradetape("backup", "create", "--out", str(tmp_path / "live.tar.gz"), "--json",
                     "--database", source)
    assert made.returncode == 0, made.stderr
    position = json.loads(made.stdout)["position"]
    wait_for("trading after the backup", lambda: head(source) > position + 20)
    restored = tradetape("backup", "restore", str(tmp_path / "live.tar.gz"), "--json",
                         "--database", empty_postgres)
    server.stop()

    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = json.loads(restored.stdout)
    assert report["position"] == position and report["ok"] is True
    assert report["audit_verify"] == {"intact": True, "events": position, "problem": None}
    assert report["source_chain"]["problem"] is None
    assert log_rows(empty_postgres) == [row for row in log_rows(source) if row[0] <= position]
    restored_views = views_of(empty_postgres)
    assert restored_views == views_at(source, position)
    assert any(row for row in restored_views["fe_deals"]), "no deal in the restored read models"


def test_the_server_makes_scheduled_backups_that_verify(launch, tmp_path):
    folder = tmp_path / "scheduled"
    server = launch(env={"TRADETAPE_BACKUP_DIR": str(folder),
                         "TRADETAPE_BACKUP_EVERY": "0.001"})  # every 3.6 s

    first = wait_for("a scheduled backup", lambda: sorted(folder.glob("*.tar.gz")))
    time.sleep(4)
    server.stop()
    later = sorted(folder.glob("*.tar.gz"))

    assert "backups every" in server.stdout
    # newer backups were made, and the retention kept only each day's newest
    assert later[-1].name > first[-1].name
    assert len(later) == len({time_of(path.name).date() for path in later})
    checked = tradetape("backup", "verify", str(later[-1]))
    assert checked.returncode == 0, checked.stderr
