"""Per-user data keys and the sealing done with them (crypto-shredding).

Each user has a random 256-bit AES key in the table ``user_data_keys(user_id, data_key)``,
in the same database as the events but never in the log, wrapped under the master key
(``master_keys``), which is not in the database. Personal data is sealed with
AES-GCM under that key, the associated data binding each ciphertext to its owner and purpose
(a sealed email cannot be replayed as another user's, or as a display name). Sealed text is
``v1.<base64url(nonce || ciphertext || tag)>``.

Destroying the key is the erasure: every event stays as it was, byte for byte, and what was
sealed under the key can no longer be read by anyone (``unseal`` answers ``None``). The
tables are scrubbed afterwards (SQLite's write-ahead log checkpointed and truncated), so the
key's bytes do not linger in the database files.
"""

from __future__ import annotations

import base64
import os
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.security.key_files import new_key
from adapters.security.master_keys import DATA_KEYS, MasterKeys
from adapters.security.tables import KeyValueTable, Tables
from domain.errors import DomainError
from domain.ports import DataKeyStore

_VERSION = "v1"
_NONCE_BYTES = 12


class SealedDataError(DomainError):
    """Sealed text that does not open under its owner's key: tampered or misattributed."""

    code = "SEALED_DATA_CORRUPT"


class AesGcmDataKeyStore(DataKeyStore):
    def __init__(self, tables: Tables, master: MasterKeys | None = None):
        """``master``: the master key; a new one in memory when not given (tests)."""
        self._tables = tables
        self._keys: KeyValueTable = tables.table(*DATA_KEYS)
        self._master = master or MasterKeys(new_key())

    def create_key(self, owner: UUID) -> None:
        key = AESGCM.generate_key(bit_length=256)
        if not self._keys.insert(str(owner), self._master.wrap(owner, key)):
            raise DomainError(f"user {owner} already has a data key", code="DATA_KEY_EXISTS")

    def seal(self, owner: UUID, purpose: str, text: str) -> str:
        key = self._key(owner)
        if key is None:
            raise DomainError(f"user {owner} has no data key (forgotten?)",
                              code="DATA_KEY_MISSING")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, text.encode(), _context(owner, purpose))
        return f"{_VERSION}.{_b64(nonce + sealed)}"

    def unseal(self, owner: UUID, purpose: str, sealed: str) -> str | None:
        key = self._key(owner)
        if key is None:
            return None
        version, _, body = sealed.partition(".")
        if version != _VERSION:
            raise SealedDataError(f"unknown sealing {version!r}")
        raw = base64.urlsafe_b64decode(body.encode())
        try:
            text = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                       _context(owner, purpose))
        except InvalidTag:
            raise SealedDataError(f"{purpose} of user {owner} does not open") from None
        return text.decode()

    def destroy_key(self, owner: UUID) -> None:
        self._keys.delete(str(owner))
        self._tables.scrub()

    def _key(self, owner: UUID) -> bytes | None:
        # Read every time, not cached: a key another process destroyed must stop working
        # here at once.
        stored = self._keys.get(str(owner))
        return None if stored is None else self._master.unwrap(owner, stored)


def _context(owner: UUID, purpose: str) -> bytes:
    return f"tradetape:{owner}:{purpose}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()
