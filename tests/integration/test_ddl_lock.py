"""The DDL lock is a schema's own: processes creating their tables in two schemas of one
database (two tenants, two test workers) do not wait for each other, and one stuck while
holding it stalls no other schema; in one schema every creator still takes its turn (the
schema, the event tables, the view, lease and security tables all wait for the same key).

A lock wait is bounded (``lock_timeout``, through libpq's PGOPTIONS for the connections the
creators open themselves): a creator that waits for the held lock fails with "lock timeout"
instead of hanging the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from adapters.event_store.leases import create_tables
from adapters.security.tables import open_tables
from application.bootstrap import open_trading
from application.settings import _connect_kwargs, lock_ddl, parse_database_url, prepare
from projections.store import open_view_store


def create_schema(url: str) -> None:
    prepare(parse_database_url(url))


def create_event_tables(url: str) -> None:
    open_trading(url).close()


def create_lease_tables(url: str) -> None:
    database = parse_database_url(url)
    prepare(database)
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        create_tables(conn, database.env["POSTGRES_SCHEMA"])


def create_view_tables(url: str) -> None:
    database = parse_database_url(url)
    prepare(database)
    store = open_view_store(database)
    try:
        store.ensure_tracking()
    finally:
        store.close()


def create_security_table(url: str) -> None:
    database = parse_database_url(url)
    prepare(database)
    tables = open_tables(database)
    try:
        tables.table("ddl_lock_probe", "k", "v")
    finally:
        tables.close()


CREATORS: dict[str, Callable[[str], None]] = {
    "schema": create_schema, "events": create_event_tables, "leases": create_lease_tables,
    "views": create_view_tables, "security": create_security_table}


@contextmanager
def ddl_held(url: str) -> Iterator[None]:
    """Another process inside its CREATEs in the schema of ``url``, for the block."""
    database = parse_database_url(url)
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn, \
            conn.transaction():
        lock_ddl(conn, database.env["POSTGRES_SCHEMA"])
        yield


@contextmanager
def other_schema(postgres_url: str) -> Iterator[str]:
    """A second schema of the same database (this test's own, dropped afterwards)."""
    schema = parse_database_url(postgres_url).env["POSTGRES_SCHEMA"] + "_b"
    try:
        yield f"{postgres_url.split('?', maxsplit=1)[0]}?schema={schema}"
    finally:
        env = parse_database_url(postgres_url).env
        with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("creator", CREATORS)
def test_tables_of_another_schema_are_created_while_one_schema_holds_the_lock(
        postgres_url, creator, monkeypatch):
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=5000")
    with other_schema(postgres_url) as other, ddl_held(postgres_url):
        CREATORS[creator](other)  # no wait: a lock timeout here is the old database-wide key


@pytest.mark.parametrize("creator", CREATORS)
def test_creators_in_one_schema_still_take_turns(postgres_url, creator, monkeypatch):
    prepare(parse_database_url(postgres_url))  # (the schema exists: the creator reaches
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=300")  # its own CREATE)
    with ddl_held(postgres_url), pytest.raises(Exception, match="lock timeout"):
        CREATORS[creator](postgres_url)
    CREATORS[creator](postgres_url)  # once the other one is done, it goes through
