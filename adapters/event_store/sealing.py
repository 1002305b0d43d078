"""Seals on stored events: the SQLite and PostgreSQL recorders write, in the transaction that
stores a batch of events, one row per event in the plain table ``event_seals``
(originator id, version, key fingerprint, HMAC seal; see ``adapters/security/audit_key``).

The seal is NOT part of the event: stored events stay byte-identical (``replay --check``),
and the memory store (backtests) seals nothing. The key is loaded at the first append, so
processes that only read never need it. ``check_seals`` reads the log joined with its seals
and names the first event without a valid one.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.security.audit_key import (
    AUDIT_KEY_FILE_ENV,
    SEAL_PREFIX,
    AuditKey,
    load_audit_key,
)

SEALS_TABLE = "event_seals"
KeySource = Callable[[], AuditKey | None]


def canonical_id(oid: Any) -> str:
    """An originator id as canonical UUID text (SQLite stores it as 32 hex digits)."""
    if type(oid) is UUID:
        return str(oid)
    h = str(oid)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" if len(h) == 32 else h


def batch_sealer(key: AuditKey) -> Callable[[str, int, str, bytes], str]:
    """``key.seal``, the key's HMAC set up once for a batch and copied for each event.
    WHY: the one-shot HMAC hashes the key's two padded blocks again for every event; a
    heavy candle's seals were ~5 us an event, a tenth of its processor time. OpenSSL's
    HMAC object is used as it is where the standard library has it (``hmac.HMAC`` wraps
    it in Python calls: ~0.3 us an event of a 1.2 us seal); the same HMAC-SHA256."""
    keyed = _keyed(key.secret)

    def seal(oid: str, version: int, topic: str, state: bytes) -> str:
        mac = keyed.copy()
        mac.update(f"{SEAL_PREFIX}\n{oid}\n{version}\n{topic}\n".encode())
        mac.update(state)
        return mac.hexdigest()

    return seal


def _keyed(secret: bytes) -> Any:
    """An HMAC-SHA256 keyed with ``secret``, to be copied: OpenSSL's own, else hmac's."""
    try:
        from _hashlib import hmac_new
    except ImportError:  # (a Python built without OpenSSL)
        return hmac.new(secret, digestmod="sha256")
    return hmac_new(secret, digestmod="sha256")


def key_source(env: Any, default_path: str | None) -> KeySource:
    """Loads (creating the file if need be) the audit key the library's environment ``env``
    names; None, and no sealing, when it names none."""
    from pathlib import Path

    def load() -> AuditKey | None:
        path = env.get(AUDIT_KEY_FILE_ENV) or default_path
        return load_audit_key(Path(path) if path else None, env, create=True)

    return load


class Sealing:
    """Mixed into a recorder: ``seal_rows`` for its insert; ``key_source`` set by the
    factory (None: this recorder does not seal)."""

    key_source: KeySource | None = None
    _key: AuditKey | None = None

    def sealing_key(self) -> AuditKey | None:
        if self._key is None and self.key_source is not None:
            self._key = self.key_source()
        return self._key

    def seal_rows(self, stored_events: Sequence[Any], stored_id: Callable[[Any], Any]
                  ) -> list[tuple]:
        key = self.sealing_key()
        if key is None:
            return []
        fingerprint, seal = key.fingerprint, batch_sealer(key)
        return [(stored_id(s.originator_id), s.originator_version, fingerprint,
                 seal(canonical_id(s.originator_id), s.originator_version, s.topic, s.state))
                for s in stored_events]

    def seal_texts(self, stored_events: Sequence[Any]) -> tuple[str, list[str]] | None:
        """The key's fingerprint and each event's seal, in order (None: no sealing): what
        ``seal_rows`` gives without its ids and versions, for a recorder that sends them
        once for the events and their seals alike."""
        key = self.sealing_key()
        if key is None:
            return None
        seal = batch_sealer(key)
        # each aggregate's id written once (by the id object: its events share it, and a
        # UUID's own hash and text are Python code), ~3 events an aggregate in a candle
        names: dict[int, str] = {}
        seals = []
        for s in stored_events:
            oid = s.originator_id
            name = names.get(id(oid))
            if name is None:
                name = names[id(oid)] = canonical_id(oid)
            seals.append(seal(name, s.originator_version, s.topic, s.state))
        return key.fingerprint, seals

    def first_sealed(self, stop: int, page: int = 5000) -> int | None:
        """The position of the first sealed event up to ``stop`` (sealing began there)."""
        for row in _rows(self, stop, page):
            if row[6] is not None:
                return row[0]
        return None

    # --- reading (dialects implement these two) -------------------------------------------

    def sealed_log_page(self, after: int, stop: int, limit: int) -> list[tuple]:
        """``(position, originator id, version, topic, state, key fingerprint | None,
        seal | None)`` after ``after`` up to ``stop``."""
        raise NotImplementedError

    def orphan_seals(self, limit: int) -> list[tuple[str, int]]:
        """``(originator id, version)`` of seals whose event is gone."""
        raise NotImplementedError


@dataclass(frozen=True)
class SealReport:
    checked: int  # events with a valid seal
    unsealed_before: int  # events before the first sealed one (written before sealing)
    first_sealed: int | None  # position of the first sealed event
    position: int | None = None
    problem: str | None = None
    missing: tuple[str, int] | None = None  # a sealed event no longer in the log

    @property
    def intact(self) -> bool:
        return self.problem is None and self.missing is None


def check_seals(recorder: Any, key: AuditKey, stop: int, page: int = 5000
                ) -> SealReport | None:
    """Every event up to position ``stop`` against its seal (None: ``recorder`` keeps no
    seals, e.g. the ``memory`` store). Events before the first sealed one count as written
    before sealing began; after it, an event without a valid seal is named (forged, edited,
    or written by a process with another key)."""
    if not isinstance(recorder, Sealing):
        return None
    checked = unsealed = 0
    began: int | None = None
    fingerprint = key.fingerprint
    for position, stored_id, version, topic, state, key_id, seal in _rows(recorder, stop,
                                                                           page):
        oid = canonical_id(stored_id)
        if seal is None:
            if began is None:
                unsealed += 1
                continue
            return SealReport(checked, unsealed, began, position,
                              f"event {oid} v{version} has no seal: it was not written by "
                              "tradetape (forged)")
        if key_id != fingerprint:
            return SealReport(checked, unsealed, began, position,
                              f"event {oid} v{version} is sealed with key {key_id}, not with "
                              f"the audit key given ({key.fingerprint})")
        if not key.holds(seal, oid, version, topic, _bytes(state)):
            return SealReport(checked, unsealed, began, position,
                              f"event {oid} v{version} does not match its seal: its stored "
                              "bytes, topic, id or version were changed")
        began = position if began is None else began
        checked += 1
    orphans = recorder.orphan_seals(1)
    missing = (canonical_id(orphans[0][0]), orphans[0][1]) if orphans else None
    return SealReport(checked, unsealed, began, missing=missing)


def first_sealed(recorder: Any, stop: int) -> int | None:
    """Where sealing began in the log (None: nothing sealed, or a store without seals)."""
    return recorder.first_sealed(stop) if isinstance(recorder, Sealing) else None


def seal_lookup(recorder: Any) -> Callable[[int, int], dict[int, str | None]] | None:
    """``(after, stop) -> {position: seal or None}`` for exports; None without seals."""
    if not isinstance(recorder, Sealing):
        return None

    def seals(after: int, stop: int) -> dict[int, str | None]:
        return {row[0]: row[6] for row in recorder.sealed_log_page(after, stop, stop - after)}

    return seals


def _bytes(state: Any) -> bytes:
    return state.encode() if isinstance(state, str) else bytes(state)


def _rows(recorder: Sealing, stop: int, page: int) -> Iterator[tuple]:
    after = 0
    while rows := recorder.sealed_log_page(after, stop, page):
        yield from rows
        after = rows[-1][0]
