"""Login by email without the email in the log: ``user_emails(email_hmac, user_id)``.

The choice: a keyed digest, HMAC-SHA256 of the normalised address under a key derived from
the server secret (``TRADETAPE_SECRET_KEY`` or its key file). A plain SHA-256 of an address could be
reversed by hashing a list of known addresses; without the server secret, the HMAC cannot.
The table lives beside the events (same SQLite file or PostgreSQL schema; a dict for
``memory``) and is not a source of truth: ``Identity.rebuild_email_index`` rebuilds it from
the ``User`` events (sealed emails) and the data keys, e.g. after the secret changed. A
forgotten user's row is deleted, and the rebuild cannot bring it back (no key, no address).
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

from adapters.security.tables import Tables
from domain.credentials import normalize_email
from domain.ports import EmailIndex


class HmacEmailIndex(EmailIndex):
    def __init__(self, tables: Tables, key: bytes):
        self._tables = tables
        self._rows = tables.table("user_emails", "email_hmac", "user_id", unique_value=True)
        self._key = key

    def claim(self, email: str, owner: UUID) -> bool:
        digest = self._digest(email)
        if self._rows.insert(digest, str(owner)):
            return True
        return self._rows.get(digest) == str(owner)  # claiming one's own address again

    def find(self, email: str) -> UUID | None:
        owner = self._rows.get(self._digest(email))
        return None if owner is None else UUID(owner)

    def release(self, owner: UUID) -> None:
        self._rows.delete_value(str(owner))
        self._tables.scrub()

    def clear(self) -> None:
        self._rows.clear()

    def _digest(self, email: str) -> str:
        return hmac.new(self._key, normalize_email(email).encode(), hashlib.sha256).hexdigest()
