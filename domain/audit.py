"""The audit trail's own records, kept in the log they vouch for: a checkpoint of the hash
chain's head (also written outside the database, where it anchors the chain), and a forced
re-chain of the audit log with the operator's reason. One aggregate each (an event that
creates it), so recording one never loads or contends with another."""

from __future__ import annotations

from uuid import UUID

from domain.errors import DomainError
from domain.recording import Cause, TradetapeAggregate


class AuditCheckpoint(TradetapeAggregate):
    """The audit chain's head at ``position``: ``chain_head`` (the hash) after ``events``
    events, the audit key's fingerprint and the first sealed position, and an Ed25519
    ``signature`` (hex) by ``public_key`` (hex) when the operator signed it."""

    position: int
    chain_head: str

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Taken(TradetapeAggregate.Created, Event):
        position: int
        chain_head: str
        events: int
        key_fingerprint: str | None
        sealed_from: int | None
        signature: str | None
        public_key: str | None

        def apply(self, checkpoint: AuditCheckpoint) -> None:
            checkpoint.position, checkpoint.chain_head = self.position, self.chain_head

    @classmethod
    def take(cls, checkpoint_id: UUID, cause: Cause, *, position: int, chain_head: str,
             events: int, key_fingerprint: str | None, sealed_from: int | None,
             signature: str | None, public_key: str | None) -> AuditCheckpoint:
        return cls._start(cls.Taken, checkpoint_id, cause, position=position,
                          chain_head=chain_head, events=events,
                          key_fingerprint=key_fingerprint, sealed_from=sealed_from,
                          signature=signature, public_key=public_key)


class AuditRechain(TradetapeAggregate):
    """An operator rebuilt the audit log although its chain disagreed with the event store
    (first at ``position``: ``problem``), for ``reason``."""

    reason: str

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Forced(TradetapeAggregate.Created, Event):
        reason: str
        position: int | None
        problem: str

        def apply(self, rechain: AuditRechain) -> None:
            rechain.reason = self.reason

    @classmethod
    def force(cls, rechain_id: UUID, cause: Cause, *, reason: str, position: int | None,
              problem: str) -> AuditRechain:
        if not reason.strip():
            raise DomainError("a forced re-chain needs a reason", code="REASON_REQUIRED",
                              field="reason")
        return cls._start(cls.Forced, rechain_id, cause, reason=reason.strip(),
                          position=position, problem=problem)
