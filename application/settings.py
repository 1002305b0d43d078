"""Turns Tradetape's settings (``TRADETAPE_DATABASE_URL`` or ``--database``) into the
``eventsourcing`` library's environment. The one place that knows both vocabularies."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from domain.errors import DomainError

DATABASE_URL_ENV = "TRADETAPE_DATABASE_URL"
DEFAULT_SQLITE_PATH = Path("var") / "tradetape.sqlite"
# The read models of a SQLite store live in a file of their own beside the event store's
# (``var/tradetape.sqlite.views``): SQLite has one write lock per file, and a projection's
# batch holding it made a webhook's append wait (README "Signals: webhooks and TradingView").
VIEWS_FILE_SUFFIX = ".views"
# Query parameters of a postgresql:// URL that tune the library's connection pool.
_PG_QUERY_KEYS = {
    "schema": "POSTGRES_SCHEMA",
    "pool_size": "POSTGRES_POOL_SIZE",
    "max_overflow": "POSTGRES_MAX_OVERFLOW",
    "connect_timeout": "POSTGRES_CONNECT_TIMEOUT",
    "lock_timeout": "POSTGRES_LOCK_TIMEOUT",
    "pre_ping": "POSTGRES_PRE_PING",
}
_PG_INT_KEYS = {"pool_size", "max_overflow", "connect_timeout", "lock_timeout"}
# How long the first connection may take before the server counts as unreachable
# (``connect_timeout`` in the URL or POSTGRES_CONNECT_TIMEOUT overrides it).
PROBE_TIMEOUT_SECONDS = 5
# The schema a PostgreSQL URL without ``?schema=`` uses (the library's default too).
DEFAULT_PG_SCHEMA = "public"


class DatabaseUrlError(DomainError):
    code = "INVALID_DATABASE_URL"


@dataclass(frozen=True)
class Database:
    """A parsed database URL. ``kind`` is ``memory``, ``sqlite`` or ``postgres``."""

    url: str
    kind: str
    env: dict[str, str]
    sqlite_path: Path | None = None

    @property
    def display(self) -> str:
        """The URL without its password, safe to print and log."""
        parsed = urlparse(self.url)
        if parsed.password:
            return self.url.replace(f":{parsed.password}@", ":***@", 1)
        return self.url

    @property
    def views_path(self) -> Path | None:
        """The SQLite file of the read models (None unless the store is a SQLite file)."""
        if self.sqlite_path is None:
            return None
        return self.sqlite_path.with_name(self.sqlite_path.name + VIEWS_FILE_SUFFIX)

    @property
    def sqlite_files(self) -> list[Path]:
        """Every file a SQLite store is made of: the event store, the read models, and
        each one's write-ahead log and shared memory."""
        if self.sqlite_path is None or self.views_path is None:
            return []
        return [Path(f"{path}{suffix}") for path in (self.sqlite_path, self.views_path)
                for suffix in ("", "-wal", "-shm")]


def resolve_url(cli_value: str | None = None) -> str:
    return cli_value or os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def parse_database_url(url: str | None = None) -> Database:
    """``memory`` | ``sqlite:///PATH`` | ``postgresql://user[:pw]@host[:port]/db[?schema=..]``."""
    url = resolve_url(url)
    if url == "memory":
        return Database(url, "memory", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    if url.startswith("sqlite:///"):
        raw_path, _, query = url[len("sqlite:///"):].partition("?")
        if query:
            # Otherwise "?mode=ro" silently became part of the file name.
            raise DatabaseUrlError(
                f"unknown option {query!r}: a sqlite URL takes no options", field="database"
            )
        # Checked before Path(): Path("") is "." and would pass for a file name.
        if not raw_path:
            raise DatabaseUrlError(f"no file path in {url!r}", field="database")
        path = Path(unquote(raw_path))
        return Database(
            url,
            "sqlite",
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)},
            sqlite_path=path,
        )
    if url.startswith(("postgresql://", "postgres://")):
        return Database(url, "postgres", _postgres_env(url))
    raise DatabaseUrlError(
        f"unsupported database URL {url!r}: use memory, sqlite:///PATH or postgresql://...",
        field="database",
    )


def _postgres_env(url: str) -> dict[str, str]:
    parsed = urlparse(url)
    dbname = parsed.path.lstrip("/")
    if not parsed.hostname or not dbname:
        raise DatabaseUrlError(f"{url!r} needs a host and a database name", field="database")
    try:
        port = parsed.port  # a ValueError here used to escape as a traceback
    except ValueError:
        raise DatabaseUrlError(f"the port in {url!r} is not a number", field="database") from None
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parsed.hostname,
        "POSTGRES_PORT": str(port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        # Appends fail fast instead of waiting forever behind a DDL lock.
        "POSTGRES_LOCK_TIMEOUT": "10",
    }
    for key, values in parse_qs(parsed.query, keep_blank_values=True).items():
        if key not in _PG_QUERY_KEYS:
            raise DatabaseUrlError(
                f"unknown option {key!r}; known: {', '.join(sorted(_PG_QUERY_KEYS))}",
                field="database",
            )
        value = values[-1]
        # Checked here, or a typo fails later inside the library with a bare ValueError
        # (or, for a blank schema, silently uses the public one).
        if not value or (key in _PG_INT_KEYS and not value.isdigit()):
            kind = "a whole number" if key in _PG_INT_KEYS else "a value"
            raise DatabaseUrlError(f"option {key!r} needs {kind}, got {value!r}", field="database")
        env[_PG_QUERY_KEYS[key]] = value
    return env


def prepare(database: Database) -> None:
    """Create what must exist before the library connects: the SQLite folder, the PG schema.
    A PostgreSQL server that cannot be reached is ``DATABASE_UNAVAILABLE`` at once: the
    library's pool would retry for its whole connect timeout, then fail with a traceback."""
    if database.sqlite_path is not None:
        folder = database.sqlite_path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # e.g. under /proc, or read-only: said before anything runs
            raise DomainError(f"cannot create the folder {folder} for {database.display}: "
                              f"{error.strerror}", code="DATABASE_UNAVAILABLE",
                              field="database") from None
    if database.kind != "postgres":
        return
    import psycopg
    from psycopg import sql

    schema = database.env.get("POSTGRES_SCHEMA")
    timeout = int(database.env.get("POSTGRES_CONNECT_TIMEOUT") or PROBE_TIMEOUT_SECONDS)
    try:
        with (
            psycopg.connect(**_connect_kwargs(database.env), autocommit=True,
                            connect_timeout=timeout) as conn,
            conn.transaction(),
        ):
            if schema:
                lock_ddl(conn, schema)
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.OperationalError as error:
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise DomainError(f"cannot connect to {database.display}: {reason}",
                          code="DATABASE_UNAVAILABLE", field="database") from None


def ddl_lock_key(schema: str | None) -> int:
    """The advisory lock key of ``schema``'s DDL (None or "": the default schema): a signed
    64-bit hash of its name, the same in every process and every version."""
    name = schema or DEFAULT_PG_SCHEMA
    digest = hashlib.sha256(f"tradetape:ddl:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_ddl(cursor: Any, schema: str | None) -> None:
    """Wait until no other process creates tables in ``schema``, then keep them out of it
    until this transaction ends. ``cursor``: a psycopg cursor or connection inside a
    transaction. Every CREATE of ours takes it first (the schema itself, the library's event
    tables, the view, lease and security tables): ``IF NOT EXISTS`` does not hold against a
    concurrent creator, which fails with a unique violation on the catalog instead.
    WHY by schema: one key for the whole database made the tenants (and the tests, a schema
    each) wait for each other, and one process stuck holding it stalled every other one;
    two schemas share no catalog name, so their creators need not wait for each other."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (ddl_lock_key(schema),))


def _connect_kwargs(env: dict[str, str]) -> dict[str, str]:
    return {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": env["POSTGRES_PORT"],
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
    }
