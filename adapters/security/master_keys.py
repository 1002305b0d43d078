"""The master key (key-encryption key) that wraps every user's data key.

A data key is stored wrapped: ``w1.<master key id>.<base64url(nonce || ciphertext || tag)>``,
AES-256-GCM under the master key with the owner's id as associated data (a wrapped key moved
to another user's row does not open). The master key lives outside the database (see
``key_files``), so a copy of the database alone opens nothing. The id is a digest of the
master key, so a key that does not fit is named, not silently tried.

Earlier versions stored data keys unwrapped (base64url of the raw key): ``wrap_legacy_keys``
wraps them at the first start of this version. ``rotate`` re-wraps every data key under a
new master key; rows already under the new one are skipped, so a rotation cut short is
finished by running it again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.security.key_files import (
    MASTER_KEY_ENV,
    NEW_MASTER_KEY_ENV,
    KeyLocations,
    create_key_file,
    new_key,
    replace_key_file,
)
from adapters.security.tables import KeyValueTable, Tables
from domain.errors import DomainError

DATA_KEYS = ("user_data_keys", "user_id", "data_key")
_WRAPPED = "w1"
_NONCE_BYTES = 12


class MasterKeys:
    """``primary`` wraps; it and ``others`` (a rotation under way) unwrap."""

    def __init__(self, primary: str, others: tuple[str, ...] = ()):
        self._primary = _kek(primary)
        self._by_id = {_key_id(k): k for k in (self._primary, *map(_kek, others))}

    @property
    def primary_id(self) -> str:
        return _key_id(self._primary)

    def wrap(self, owner: UUID, data_key: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._primary).encrypt(nonce, data_key, _context(owner))
        return f"{_WRAPPED}.{self.primary_id}.{_b64(nonce + sealed)}"

    def unwrap(self, owner: UUID, stored: str) -> bytes:
        if not is_wrapped(stored):  # written by an earlier version, wrapped at next start
            return base64.urlsafe_b64decode(stored.encode())
        _, key_id, body = stored.split(".", 2)
        kek = self._by_id.get(key_id)
        if kek is None:
            raise DomainError(f"the data key of user {owner} is wrapped under master key "
                              f"{key_id}, which is not configured ({MASTER_KEY_ENV} or the "
                              "master key file)", code="MASTER_KEY_UNKNOWN")
        raw = base64.urlsafe_b64decode(body.encode())
        try:
            return AESGCM(kek).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _context(owner))
        except InvalidTag:
            raise DomainError(f"the data key of user {owner} does not open under its master "
                              "key", code="DATA_KEY_CORRUPT") from None

    def wraps_under_primary(self, stored: str) -> bool:
        return stored.startswith(f"{_WRAPPED}.{self.primary_id}.")


def is_wrapped(stored: str) -> bool:
    return stored.startswith(f"{_WRAPPED}.")


def load_master_keys(tables: Tables, locations: KeyLocations) -> MasterKeys:
    """The master key (made on first use) and a rotation's new one if there is one. Refuses
    (``MASTER_KEY_MISSING``) to make a new master key for a database whose data keys are
    already wrapped: they would all be lost."""
    primary = locations.master.read()
    if primary is None:
        if any(is_wrapped(value) for _, value in tables.table(*DATA_KEYS).items()):
            raise DomainError(
                f"the data keys in this database are wrapped under a master key that is not "
                f"here: set {MASTER_KEY_ENV} or put the master key file at "
                f"{locations.master.where}", code="MASTER_KEY_MISSING")
        primary = locations.master.read_or_create()
    following = locations.next_master.read()
    return MasterKeys(primary, (following,) if following else ())


def wrap_legacy_keys(tables: Tables, master: MasterKeys) -> int:
    """Wrap every data key an earlier version stored unwrapped; how many."""
    rows = tables.table(*DATA_KEYS)
    count = 0
    for owner, stored in rows.items():
        if not is_wrapped(stored):
            count += rows.replace(owner, stored, master.wrap(UUID(owner),
                                                             master.unwrap(UUID(owner), stored)))
    if count:
        tables.scrub()  # the unwrapped keys' bytes must not stay in SQLite's log
    return count


@dataclass(frozen=True)
class Rotation:
    rewrapped: int
    total: int
    key_id: str
    where: str  # where the new master key is now


def rotate(tables: Tables, locations: KeyLocations) -> Rotation:
    """Re-wrap every data key under a new master key: ``TRADETAPE_NEW_MASTER_KEY`` when the
    master key comes from the environment, else a new key file (first ``<file>.next``, which
    replaces the master key file once every data key is re-wrapped)."""
    current = load_master_keys(tables, locations)
    new_text = _new_master_key(locations)
    target = MasterKeys(new_text)
    rows: KeyValueTable = tables.table(*DATA_KEYS)
    items = rows.items()
    count = 0
    for owner, stored in items:
        if not target.wraps_under_primary(stored):
            data_key = current.unwrap(UUID(owner), stored)
            count += rows.replace(owner, stored, target.wrap(UUID(owner), data_key))
    tables.scrub()
    return Rotation(count, len(items), target.primary_id, _install(locations, new_text))


def _new_master_key(locations: KeyLocations) -> str:
    following = locations.next_master.read()
    if following:
        return following
    if locations.master.configured or locations.next_master.path is None:
        raise DomainError(f"the master key comes from {MASTER_KEY_ENV}: put the new one in "
                          f"{NEW_MASTER_KEY_ENV} for the rotation",
                          code="NEW_MASTER_KEY_REQUIRED")
    return create_key_file(locations.next_master.path, new_key())


def _install(locations: KeyLocations, new_text: str) -> str:
    """Make the new master key the master key: the file moves into place; a key from the
    environment is the operator's to move (the answer says so)."""
    master, following = locations.master, locations.next_master
    if master.configured or master.path is None:
        return f"${NEW_MASTER_KEY_ENV} (now set {MASTER_KEY_ENV} to it)"
    if following.configured or following.path is None or not following.path.exists():
        staged = master.path.with_name(master.path.name + ".new")
        staged.unlink(missing_ok=True)
        create_key_file(staged, new_text)
        replace_key_file(staged, master.path)
    else:
        replace_key_file(following.path, master.path)
    return str(Path(master.path))


def _kek(text: str) -> bytes:
    return hmac.new(text.encode(), b"tradetape/master-key", hashlib.sha256).digest()


def _key_id(kek: bytes) -> str:
    return hashlib.sha256(b"tradetape/master-key-id" + kek).hexdigest()[:16]


def _context(owner: UUID) -> bytes:
    return f"tradetape:data-key:{owner}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()
