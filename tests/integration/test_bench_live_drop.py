"""``scripts/bench_live.py --drop`` and the kill drill's end: the schema goes, and the key
files made for it in ``TRADETAPE_KEY_DIR`` go with it; another schema's keys in the same
folder stay."""

from __future__ import annotations

import importlib.util

import psycopg

from adapters.security.key_files import KEY_DIR_ENV
from application.bootstrap import open_identity
from application.settings import _connect_kwargs, parse_database_url
from tests.fakes import RecordingMailer
from tests.unit.test_bench_live_load import SCRIPTS, bench_live


def test_drop_removes_the_schema_and_its_key_files(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_DIR_ENV, str(tmp_path))
    monkeypatch.delenv("TRADETAPE_SECRET_KEY", raising=False)  # made in a key file too
    open_identity(postgres_url, mailer=RecordingMailer(), bcrypt_rounds=4).close()
    schema = parse_database_url(postgres_url).env["POSTGRES_SCHEMA"]
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made and all(f"-{schema}." in name for name in made)  # (the keys it made)
    other = tmp_path / f"127.0.0.1-5432-test-{schema}_2.audit-key"  # a schema named alike
    other.write_text("x" * 64)

    bench_live(monkeypatch).drop_schema(postgres_url)

    assert [p.name for p in tmp_path.iterdir()] == [other.name]
    env = parse_database_url(postgres_url).env
    with psycopg.connect(**_connect_kwargs(env)) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (schema,)).fetchone() is None


def test_the_kill_drill_drops_its_schemas_key_files_too(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_DIR_ENV, str(tmp_path))
    open_identity(postgres_url, mailer=RecordingMailer(), bcrypt_rounds=4).close()
    schema = parse_database_url(postgres_url).env["POSTGRES_SCHEMA"]
    assert any(f"-{schema}." in p.name for p in tmp_path.iterdir())
    other = tmp_path / f"127.0.0.1-5432-test-{schema}_2.audit-key"
    other.write_text("x" * 64)
    monkeypatch.syspath_prepend(str(SCRIPTS))  # (its sibling drill_watch)
    spec = importlib.util.spec_from_file_location("drill_kill", SCRIPTS / "drill_kill.py")
    drill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drill)

    drill.drop_schemas(postgres_url.split("?", maxsplit=1)[0], schema)

    assert [p.name for p in tmp_path.iterdir()] == [other.name]
