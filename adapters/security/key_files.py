"""Where the server secret and the master key live: outside the database, by default.

A read-only copy of the database must not be enough to sign tokens or to open personal data,
so neither key is kept in it:

- ``TRADETAPE_SECRET_KEY`` / ``TRADETAPE_MASTER_KEY`` when set (at least 32 characters);
- otherwise a file each, created on first use with mode 0600 (only the owner reads it):
  beside a SQLite file (``tradetape.sqlite.secret-key``, ``tradetape.sqlite.master-key``),
  or, for PostgreSQL, in ``TRADETAPE_KEY_DIR`` (default ``var/keys``) named after the
  database (``HOST-PORT-DB-SCHEMA.secret-key``). ``TRADETAPE_KEY_DIR`` also moves a SQLite
  file's keys there.

``memory`` stores keep both keys in the process (nothing outlives it anyway).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from application.settings import Database
from domain.errors import DomainError

SECRET_KEY_ENV = "TRADETAPE_SECRET_KEY"
MASTER_KEY_ENV = "TRADETAPE_MASTER_KEY"
# The master key a rotation moves to, when the master key comes from the environment.
NEW_MASTER_KEY_ENV = "TRADETAPE_NEW_MASTER_KEY"
KEY_DIR_ENV = "TRADETAPE_KEY_DIR"
DEFAULT_KEY_DIR = Path("var") / "keys"
MIN_KEY_LENGTH = 32
NEXT_SUFFIX = ".next"  # a rotation's new master key, until every data key is re-wrapped


@dataclass(frozen=True)
class KeySource:
    """One key: from ``env`` (a variable name) if set there, else from ``path`` (None: kept
    in memory only)."""

    env: str
    path: Path | None
    environ: Mapping[str, str]

    @property
    def configured(self) -> str | None:
        value = self.environ.get(self.env, "")
        if value and len(value) < MIN_KEY_LENGTH:
            raise DomainError(
                f"{self.env} needs at least {MIN_KEY_LENGTH} characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')",
                code="INVALID_SECRET_KEY" if self.env == SECRET_KEY_ENV
                else "INVALID_MASTER_KEY")
        return value or None

    @property
    def where(self) -> str:
        return f"${self.env}" if self.configured else str(self.path or "memory")

    def read(self) -> str | None:
        """The key, or None when it is neither set nor in its file yet."""
        if self.configured:
            return self.configured
        if self.path is None or not self.path.exists():
            return None
        return read_key_file(self.path)

    def read_or_create(self) -> str:
        found = self.read()
        if found is not None:
            return found
        if self.path is None:
            return new_key()
        return create_key_file(self.path, new_key())


@dataclass(frozen=True)
class KeyLocations:
    secret: KeySource
    master: KeySource
    next_master: KeySource  # a rotation under way (or asked for)


def key_locations(database: Database, environ: Mapping[str, str] | None = None
                  ) -> KeyLocations:
    environ = os.environ if environ is None else environ
    base = key_file_base(database, environ)
    if base is None:
        paths: tuple[Path | None, ...] = (None, None, None)
    else:
        master = base.with_name(base.name + ".master-key")
        paths = (base.with_name(base.name + ".secret-key"), master,
                 master.with_name(master.name + NEXT_SUFFIX))
    return KeyLocations(KeySource(SECRET_KEY_ENV, paths[0], environ),
                        KeySource(MASTER_KEY_ENV, paths[1], environ),
                        KeySource(NEW_MASTER_KEY_ENV, paths[2], environ))


def key_file_base(database: Database, environ: Mapping[str, str]) -> Path | None:
    """The key files' path without their suffix."""
    if database.kind == "memory":
        return None
    key_dir = environ.get(KEY_DIR_ENV)
    if database.kind == "sqlite":
        assert database.sqlite_path is not None
        path = database.sqlite_path
        return Path(key_dir) / path.name if key_dir else path
    env = database.env
    name = "-".join((env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"],
                     env.get("POSTGRES_SCHEMA", "public")))
    return Path(key_dir or DEFAULT_KEY_DIR) / re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def new_key() -> str:
    return secrets.token_urlsafe(32)


def read_key_file(path: Path) -> str:
    value = path.read_text().strip()
    if len(value) < MIN_KEY_LENGTH:
        raise DomainError(f"the key file {path} holds no key of {MIN_KEY_LENGTH}+ characters",
                          code="INVALID_KEY_FILE")
    return value


def create_key_file(path: Path, value: str) -> str:
    """Write ``value`` to a new 0600 file at ``path``, unless another process made it first:
    then that one's key is the key (both processes use the same)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new folder: owner only
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_private(temporary, value)
    try:
        os.link(temporary, path)  # atomic, and fails if the file exists
    except FileExistsError:
        return read_key_file(path)
    finally:
        temporary.unlink()
    return value


def replace_key_file(source: Path, target: Path) -> None:
    """Make ``source`` the key at ``target`` (atomically, on one file system)."""
    os.chmod(source, 0o600)
    os.replace(source, target)


def _write_private(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
        file.flush()
        os.fsync(file.fileno())
