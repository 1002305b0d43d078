"""The server secret that signs access tokens and keys the email index.

``TRADETAPE_SECRET_KEY`` when set (at least 32 characters; set it in production and keep it
out of the database). Otherwise, so that a fresh SQLite install needs no configuration, a
random secret is generated once and kept in the table ``server_secrets`` of the same
database (per process for ``memory``). Changing the secret logs everyone out and calls for
``Identity.rebuild_email_index``; no data is lost.

Each use gets its own key derived from the secret, so no two purposes share a key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping

from adapters.security.tables import Tables
from domain.errors import DomainError

SECRET_KEY_ENV = "TRADETAPE_SECRET_KEY"
MIN_SECRET_LENGTH = 32


def load_server_secret(tables: Tables, environ: Mapping[str, str] | None = None) -> bytes:
    environ = os.environ if environ is None else environ
    configured = environ.get(SECRET_KEY_ENV, "")
    if configured:
        if len(configured) < MIN_SECRET_LENGTH:
            raise DomainError(
                f"{SECRET_KEY_ENV} needs at least {MIN_SECRET_LENGTH} characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')",
                code="INVALID_SECRET_KEY")
        return configured.encode()
    stored = tables.table("server_secrets", "name", "secret")
    # Two processes starting at once: one insert wins, both read the winner.
    stored.insert("server", secrets.token_urlsafe(32))
    value = stored.get("server")
    assert value is not None
    return value.encode()


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"tradetape/{purpose}".encode(), hashlib.sha256).digest()
