"""Recording the audit trail's own events in the Trading log, with the operator who acted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from application.trading import Trading
from domain.audit import AuditCheckpoint, AuditRechain


@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint says about the chain (see ``projections/anchoring.py``)."""

    position: int
    chain_head: str
    events: int
    key_fingerprint: str | None = None
    sealed_from: int | None = None
    signature: str | None = None
    public_key: str | None = None


def record_checkpoint(trading: Trading, facts: CheckpointFacts, actor: str) -> AuditCheckpoint:
    checkpoint = AuditCheckpoint.take(
        trading.ids.new_id(), trading.cause(actor), position=facts.position,
        chain_head=facts.chain_head, events=facts.events,
        key_fingerprint=facts.key_fingerprint, sealed_from=facts.sealed_from,
        signature=facts.signature, public_key=facts.public_key)
    trading.save_all(checkpoint)
    return checkpoint


def record_rechain(trading: Trading, *, reason: str, position: int | None, problem: str,
                   actor: str) -> AuditRechain:
    rechain = AuditRechain.force(trading.ids.new_id(), trading.cause(actor), reason=reason,
                                 position=position, problem=problem)
    trading.save_all(rechain)
    return rechain


log = logging.getLogger(__name__)


class CheckpointSchedule:
    """Takes a checkpoint (``take``: records it and writes it outside the database) at
    start and then every ``seconds``, on a thread of its own, until stopped. A failed
    checkpoint is logged and tried again at the next tick: it never stops the server."""

    def __init__(self, take: Callable[[], object], seconds: float,
                 name: str = "audit-checkpoints"):
        """``name``: the thread's, and what a failure's log line says (the wallet monitor
        runs on one of these too)."""
        self.take, self.seconds, self.name = take, seconds, name
        self.taken = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.take()
                self.taken, self.last_error = self.taken + 1, None
            except Exception as error:  # the next tick tries again
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("%s failed: %s", self.name, self.last_error)
            self._stop.wait(self.seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
