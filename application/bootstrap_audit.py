"""The composition root's audit trail: the audit key (see adapters/security/audit_key.py),
the events' seals checked before a rebuild, and signed checkpoints of the audit chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.settings import parse_database_url

if TYPE_CHECKING:
    from application.trading import Trading


def open_audit_key(url: str | None = None):
    """The audit key sealing the events of the store ``url`` names, or None where there is
    none (never created here: a reader that made a key would check against the wrong one)."""
    from adapters.security.audit_key import key_file_for, load_audit_key

    return load_audit_key(key_file_for(parse_database_url(url)), create=False)


def seal_check(trading: Trading, url: str | None):
    """``check(head) -> (position, problem) | None`` over the events' seals, for a rebuild
    to refuse a log with a bad seal; None when this process has no audit key."""
    from adapters.event_store.sealing import check_seals

    key = open_audit_key(url)
    if key is None:
        return None

    def check(head: int):
        report = check_seals(trading.recorder, key, head)
        return None if report is None or report.problem is None else (
            report.position, report.problem)

    return check


def take_audit_checkpoint(trading: Trading, store, database, *, sign: str | None,
                          actor: str):
    """The audit chain's head in ``store`` as a ``projections.anchoring.Checkpoint``, signed
    with the Ed25519 key file ``sign`` when given, and recorded in the log as an
    ``AuditCheckpoint`` (None when nothing is audited yet)."""
    from dataclasses import replace

    from adapters.event_store.sealing import first_sealed
    from adapters.security.audit_key import key_file_for, load_audit_key
    from application.audit_trail import CheckpointFacts, record_checkpoint
    from projections.anchoring import Checkpoint, audit_head

    head = audit_head(store) if store.table_exists("audit_log") else None
    if head is None:
        return None
    position, digest, events = head
    key = load_audit_key(key_file_for(database), create=False)
    checkpoint = Checkpoint(position, digest, events,
                            trading.clock.now().isoformat(timespec="seconds"),
                            key.fingerprint if key else None,
                            first_sealed(trading.recorder, position))
    if sign:
        from adapters.security.signing import public_key_of, sign_message

        checkpoint = replace(checkpoint, public_key=public_key_of(sign))
        checkpoint = replace(checkpoint, signature=sign_message(sign, checkpoint.message()))
    c = checkpoint
    recorded = record_checkpoint(trading, CheckpointFacts(
        position, digest, events, c.key_fingerprint, c.sealed_from, c.signature,
        c.public_key), actor)
    return replace(checkpoint, event_id=str(recorded.id))
