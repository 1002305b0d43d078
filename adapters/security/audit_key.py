"""The audit key: seals every stored event with an HMAC, kept OUTSIDE the database.

Someone who can write to the database can append an event and chain it into the audit log
(the chain is a plain hash anyone can compute), but cannot seal it without this key. The key
is ``TRADETAPE_AUDIT_KEY`` when set (at least 32 characters), else a 0600 file created on
first use: ``TRADETAPE_AUDIT_KEY_FILE`` when set, else beside the SQLite file
(``<file>.audit-key``; in ``TRADETAPE_KEY_DIR`` when set) or, for PostgreSQL, in
``TRADETAPE_KEY_DIR`` (default ``var/keys``) as ``<host>-<port>-<db>-<schema>.audit-key``.
Readers never create a key: verifying without one says the seals were not checked.

The seal of an event is ``HMAC-SHA256(key, "tradetape-seal-v1\\n<originator id>\\n<version>
\\n<topic>\\n" + stored state)``, as hex. A key's fingerprint (recorded with every seal and
every checkpoint) names it without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from adapters.security.key_files import create_key_file, key_file_base
from application.settings import Database
from domain.errors import DomainError

AUDIT_KEY_ENV = "TRADETAPE_AUDIT_KEY"
AUDIT_KEY_FILE_ENV = "TRADETAPE_AUDIT_KEY_FILE"
MIN_KEY_LENGTH = 32
SEAL_PREFIX = "tradetape-seal-v1"  # the first line of every sealed message


class AuditKeyError(DomainError):
    code = "AUDIT_KEY_INVALID"


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = b""

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"AuditKey({self.fingerprint})"

    @cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(b"tradetape-audit-key\0" + self.secret).hexdigest()[:16]

    def seal(self, oid: str, version: int, topic: str, state: bytes) -> str:
        """``oid``: the originator id as canonical UUID text."""
        # hmac.digest: OpenSSL's one-shot HMAC, a third of hmac.new's cost per event.
        head = f"{SEAL_PREFIX}\n{oid}\n{version}\n{topic}\n".encode()
        return hmac.digest(self.secret, head + state, "sha256").hex()

    def holds(self, seal: str, oid: str, version: int, topic: str, state: bytes) -> bool:
        return hmac.compare_digest(seal, self.seal(oid, version, topic, state))


def key_file_for(database: Database, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where ``database``'s audit key lives when it is not in the environment (None for the
    ``memory`` store, which is not sealed): beside the server secret's and master key's
    files (``adapters/security/key_files``), named ``<base>.audit-key``."""
    env = os.environ if environ is None else environ
    if env.get(AUDIT_KEY_FILE_ENV):
        return Path(env[AUDIT_KEY_FILE_ENV])
    base = key_file_base(database, env)
    return None if base is None else base.with_name(base.name + ".audit-key")


def load_audit_key(path: Path | None, environ: Mapping[str, str] | None = None, *,
                   create: bool) -> AuditKey | None:
    """The key from the environment, else from ``path`` (made there when ``create``);
    None when there is none."""
    env = os.environ if environ is None else environ
    configured = env.get(AUDIT_KEY_ENV, "")
    if configured:
        if len(configured) < MIN_KEY_LENGTH:
            raise AuditKeyError(f"{AUDIT_KEY_ENV} needs at least {MIN_KEY_LENGTH} characters")
        return AuditKey(configured.encode())
    if path is None:
        return None
    if not path.exists():
        if not create:
            return None
        create_key_file(path, secrets.token_hex(32))  # two processes at once: one key
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:  # (an OSError's text quotes the path)
        raise AuditKeyError(f"cannot read the audit key file {path.name!r}: "
                            f"{getattr(error, 'strerror', None) or 'not text'}") from None
    if len(text) < MIN_KEY_LENGTH:
        # (its name only: a log line must not say where a key lives)
        raise AuditKeyError(f"the audit key file {path.name!r} holds no key of at least "
                            f"{MIN_KEY_LENGTH} characters")
    return AuditKey(text.encode())
