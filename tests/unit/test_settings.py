"""A database URL (``--database`` or ``TRADETAPE_DATABASE_URL``) becomes the library's env."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.settings import (
    DATABASE_URL_ENV,
    DatabaseUrlError,
    parse_database_url,
    prepare,
)


@pytest.fixture
def no_env_url(monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)


def test_without_a_url_the_default_sqlite_file_is_used(no_env_url):
    db = parse_database_url()

    assert db.kind == "sqlite"
    assert db.sqlite_path == Path("var/tradetape.sqlite")
    assert db.env == {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": "var/tradetape.sqlite",
    }


def test_the_environment_variable_replaces_the_default(monkeypatch):
    monkeypatch.setenv(DATABASE_URL_ENV, "memory")

    assert parse_database_url().kind == "memory"


def test_an_explicit_url_wins_over_the_environment_variable(monkeypatch):
    monkeypatch.setenv(DATABASE_URL_ENV, "memory")

    db = parse_database_url("sqlite:///elsewhere.sqlite")

    assert db.kind == "sqlite" and db.sqlite_path == Path("elsewhere.sqlite")


def test_memory_is_the_in_process_store(no_env_url):
    db = parse_database_url("memory")

    assert (db.kind, db.env) == ("memory", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert db.sqlite_path is None


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/trades.sqlite", "var/trades.sqlite"),  # three slashes: relative
        ("sqlite:////srv/tradetape/trades.sqlite", "/srv/tradetape/trades.sqlite"),
        ("sqlite:///my%20data/t.sqlite", "my data/t.sqlite"),
    ],
)
def test_sqlite_urls_name_a_file(url, path):
    db = parse_database_url(url)

    assert db.sqlite_path == Path(path)
    assert db.env["SQLITE_DBNAME"] == path


def test_a_full_postgres_url_sets_every_connection_setting():
    db = parse_database_url(
        "postgresql://bob:s%40cret@db.example.org:6543/trades?schema=live&pool_size=3"
    )

    assert db.kind == "postgres"
    assert db.env == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "trades",
        "POSTGRES_HOST": "db.example.org",
        "POSTGRES_PORT": "6543",
        "POSTGRES_USER": "bob",
        "POSTGRES_PASSWORD": "s@cret",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_SCHEMA": "live",
        "POSTGRES_POOL_SIZE": "3",
    }


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_short_postgres_url_gets_the_defaults(scheme):
    env = parse_database_url(f"{scheme}://localhost/trades").env

    assert env["POSTGRES_PORT"] == "5432"
    assert env["POSTGRES_USER"] == "postgres"
    assert env["POSTGRES_PASSWORD"] == ""
    assert "POSTGRES_SCHEMA" not in env


@pytest.mark.parametrize(
    "url",
    [
        "mysql://db/trades",
        "sqlite://relative.sqlite",  # two slashes
        "sqlite:///",
        "sqlite:///trades.sqlite?mode=ro",
        "postgresql:///trades",
        "postgresql://localhost/",
        "postgresql://localhost:port/trades",
        "postgresql://localhost/trades?sslmode=require",
        "postgresql://localhost/trades?pool_size=many",
        "postgresql://localhost/trades?schema=",
    ],
)
def test_a_url_that_cannot_be_used_is_refused_with_a_code(url):
    with pytest.raises(DatabaseUrlError) as refused:
        parse_database_url(url)

    assert refused.value.code == "INVALID_DATABASE_URL"
    assert refused.value.field == "database"


def test_display_hides_the_password():
    db = parse_database_url("postgresql://bob:hunter2@db.example.org/trades?schema=live")

    assert db.display == "postgresql://bob:***@db.example.org/trades?schema=live"
    assert "hunter2" not in db.display


@pytest.mark.parametrize("url", ["postgresql://bob@localhost/trades", "memory"])
def test_display_of_a_url_without_password_is_the_url(url):
    assert parse_database_url(url).display == url


def test_prepare_creates_the_sqlite_folder(tmp_path):
    path = tmp_path / "nested" / "deeper" / "trades.sqlite"
    db = parse_database_url(f"sqlite:///{path}")

    prepare(db)

    assert path.parent.is_dir()
    assert not path.exists()  # the library creates the file itself
