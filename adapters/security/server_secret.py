"""The server secret that signs access tokens and keys the email index.

Kept outside the database (see ``key_files``): ``TRADETAPE_SECRET_KEY``, else a 0600 key
file made on first use. Earlier versions kept a generated secret in the table
``server_secrets``; the first start of this version moves it to the key file (sessions
survive the upgrade) and deletes the row.

Rotation: change ``TRADETAPE_SECRET_KEY`` or replace (or delete) the key file while the
server is stopped. Every access token is then invalid (everyone logs in again) and the
email index, keyed by the secret, is rebuilt at the next start (``secret_changed``).

Each use gets its own key derived from the secret, so no two purposes share a key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from adapters.security.key_files import SECRET_KEY_ENV, KeySource, create_key_file
from adapters.security.tables import Tables

__all__ = ["SECRET_KEY_ENV", "derive_key", "load_server_secret", "secret_changed"]

MIN_SECRET_LENGTH = 32
_LEGACY_TABLE = ("server_secrets", "name", "secret")


def load_server_secret(tables: Tables, environ: Mapping[str, str] | None = None,
                       source: KeySource | None = None) -> bytes:
    """The secret from ``source`` (the environment, else its key file, made on first use).
    Without a ``source`` (tests of the tables alone, ``memory``): the environment, else one
    per ``tables``, kept in memory only."""
    environ = os.environ if environ is None else environ
    source = source or KeySource(SECRET_KEY_ENV, None, environ)
    legacy = tables.table(*_LEGACY_TABLE)
    old = legacy.get("server")
    if source.configured is None and source.path is not None and old is not None \
            and source.read() is None:
        create_key_file(source.path, old)  # the upgrade: the same secret, moved out
    if old is not None and source.path is not None:
        legacy.delete("server")
        tables.scrub()
    if source.path is None and source.configured is None:
        legacy.insert("server", source.read_or_create())  # memory: one per process
        value = legacy.get("server")
        assert value is not None
        return value.encode()
    return source.read_or_create().encode()


def secret_changed(tables: Tables, secret: bytes) -> bool:
    """True when the email index was built under another secret (the secret was rotated);
    records this one. The stored check value is an HMAC under the secret: it does not help
    to find or use the secret."""
    checks = tables.table("key_checks", "name", "check_value")
    check = hmac.new(derive_key(secret, "check"), b"server-secret", hashlib.sha256).hexdigest()
    stored = checks.get("server-secret")
    if stored == check:
        return False
    if stored is None:
        checks.insert("server-secret", check)
    else:
        checks.replace("server-secret", stored, check)
    return stored is not None


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"tradetape/{purpose}".encode(), hashlib.sha256).digest()

