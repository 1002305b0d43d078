"""The audit key: outside the database, created once with owner-only permissions, never
shown, never created by a reader."""

from __future__ import annotations

import os

import pytest

from adapters.security.audit_key import AuditKeyError, key_file_for, load_audit_key
from application.settings import parse_database_url


def test_the_key_file_is_made_once_beside_the_sqlite_file_readable_by_its_owner_only(tmp_path):
    path = key_file_for(parse_database_url(f"sqlite:///{tmp_path / 'x.sqlite'}"), {})

    made = load_audit_key(path, {}, create=True)
    again = load_audit_key(path, {}, create=True)

    assert path == tmp_path / "x.sqlite.audit-key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert made == again
    assert made.secret.decode() not in repr(made)


def test_a_reader_never_creates_a_key(tmp_path):
    assert load_audit_key(tmp_path / "none.key", {}, create=False) is None
    assert not (tmp_path / "none.key").exists()


def test_the_environment_key_wins_and_must_be_long_enough(tmp_path):
    env = {"TRADETAPE_AUDIT_KEY": "k" * 32}
    assert load_audit_key(tmp_path / "a.key", env, create=True).secret == b"k" * 32
    assert not (tmp_path / "a.key").exists()
    with pytest.raises(AuditKeyError):
        load_audit_key(None, {"TRADETAPE_AUDIT_KEY": "short"}, create=True)


def test_a_postgres_store_keeps_its_key_in_the_key_folder_by_schema(tmp_path):
    database = parse_database_url("postgresql://u@db.example:5433/prod?schema=live")

    path = key_file_for(database, {"TRADETAPE_KEY_DIR": str(tmp_path)})

    assert path == tmp_path / "db.example-5433-prod-live.audit-key"


def test_a_seal_covers_id_version_topic_and_bytes():
    key = load_audit_key(None, {"TRADETAPE_AUDIT_KEY": "s" * 40}, create=False)
    seal = key.seal("id", 1, "t", b"{}")

    assert key.holds(seal, "id", 1, "t", b"{}")
    assert not any(key.holds(seal, *changed) for changed in [
        ("id2", 1, "t", b"{}"), ("id", 2, "t", b"{}"), ("id", 1, "u", b"{}"),
        ("id", 1, "t", b"{ }")])
