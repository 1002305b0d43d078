"""Backups: a store backed up at one position and restored into an empty store of either
kind holds the same log (positions, ids, versions, topics, stored bytes), the same data
keys and email index (personal data still opens), and after the rebuild every read model
equals the source's at the backup's position, with ``audit verify`` passing."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.clock import SequentialIds, SettableClock, SystemClock
from api.cli import main as cli
from api.commands.backup_checks import after_restore
from application.backup import create, restore, verify
from application.bootstrap import open_backup_store, open_identity, open_trading
from domain.backup import BackupError
from projections.registry import PROJECTIONS
from projections.runner import Projector
from projections.store import SQLiteViewStore
from tests.conftest import POSTGRES_URL, require_postgres
from tests.fakes import CountingSecrets, RecordingMailer
from tests.integration.conftest import T0
from tests.projection_stubs import (
    a_day_of_trading,
    backtest,
    candle_rows,
    catch_up,
    dump,
    saw_levels,
    view_store,
)

SECRET_KEY = "backup-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "Correct-Horse-9"


@pytest.fixture
def new_store(tmp_path) -> Iterator[Callable[[str], str]]:
    """``new_store(kind)``: the URL of a fresh, empty SQLite file or PostgreSQL schema."""
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    schemas: list[str] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.sqlite'}"
        require_postgres()
        schemas.append(f"t_{uuid.uuid4().hex[:16]}")
        return f"{POSTGRES_URL}?schema={schemas[-1]}"

    yield make
    if schemas:
        env = parse_database_url(POSTGRES_URL).env
        with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def identity_on(url: str):
    return open_identity(url, clock=SettableClock(T0), ids=SequentialIds(f"id-{url}"),
                         secrets=CountingSecrets("backup"), mailer=RecordingMailer(),
                         secret_key=SECRET_KEY, bcrypt_rounds=4)


def fill(url: str) -> None:
    """Users with sealed personal data, a day of trading, a backtest; read models built."""
    identity = identity_on(url)
    try:
        for name in ("alice", "bob"):
            identity.register(f"{name}@example.com", PASSWORD, display_name=name.title(),
                              verified=True)
        app = identity.trading
        a_day_of_trading(app)
        backtest(app, candle_rows(saw_levels(3)), seed="before")
        store = view_store(url)
        catch_up(app, store)
        store.close()
    finally:
        identity.close()


def log_rows(url: str) -> list[tuple]:
    app = open_trading(url)
    try:
        return [(n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
                for n in app.recorder.select_notifications(start=None, limit=1_000_000)]
    finally:
        app.close()


def views_at(url: str, position: int) -> dict[str, list[tuple]]:
    """Every read model of ``url`` made by the projection code from its log up to
    ``position``: what its views said when the log stood there."""
    app, store = open_trading(url), SQLiteViewStore(None)
    try:
        Projector(app, store, [cls() for cls in PROJECTIONS.values()]).catch_up(until=position)
        return dump(store)
    finally:
        store.close()
        app.close()


def views_of(url: str) -> dict[str, list[tuple]]:
    store = view_store(url)
    try:
        return dump(store)
    finally:
        store.close()


def backup_of(url: str, out: Path):
    return create(open_backup_store(url), out, clock=SystemClock(), version="test")


@pytest.mark.parametrize(("source_kind", "target_kind"), [
    ("sqlite", "sqlite"), ("sqlite", "postgres"), ("postgres", "postgres"),
    ("postgres", "sqlite")])
def test_a_restored_store_is_the_source_at_the_backup_position(
        source_kind, target_kind, new_store, tmp_path):
    source, target = new_store(source_kind), new_store(target_kind)
    fill(source)
    made = backup_of(source, tmp_path / "b.tar.gz")
    position = made.manifest["position"]
    app = open_trading(source)  # the source moves on after the backup
    backtest(app, candle_rows(saw_levels(2)), seed="after")
    app.close()
    at_backup = [row for row in log_rows(source) if row[0] <= position]

    restored = restore(tmp_path / "b.tar.gz", open_backup_store(target))
    checks = after_restore(tmp_path / "b.tar.gz", target, restored.position)

    assert restored.position == position == at_backup[-1][0]
    assert log_rows(target) == at_backup
    assert checks.ok and checks.audit_intact and checks.audit_events == position
    assert checks.chain_compared > 0 and checks.chain_problem is None
    assert views_of(target) == views_at(source, position)
    assert sum(len(rows) for rows in views_of(target).values()) > 100
    identity = identity_on(target)  # the data keys and the email index came along
    try:
        alice = identity.find_user("alice@example.com")
        assert alice is not None and alice.display_name == "Alice"
        assert identity.login("bob@example.com", PASSWORD).access_token
    finally:
        identity.close()
