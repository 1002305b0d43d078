"""Recording the audit trail's own events in the Trading log, with the operator who acted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from application.task_health import NOT_DUE, TaskHealth, log_line
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
    checkpoint is logged on one line and tried again at the next tick: it never stops the
    server, and ``/health`` shows it (``health``) until a round succeeds."""

    def __init__(self, take: Callable[[], object], seconds: float,
                 name: str = "audit-checkpoints", now: Callable[[], datetime] | None = None):
        """``name``: the thread's, and what a failure's log line says (the wallet monitor
        and the tasks beside the trading loop run on one of these too); ``now``: the
        server's clock, for when ``/health`` says a failure began."""
        self.take, self.seconds, self.name = take, seconds, name
        self.health = TaskHealth(now)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.seconds)

    def run_once(self, take: Callable[[], object] | None = None) -> None:
        """One round, as the thread runs it: a failure is logged and kept for ``/health``
        (the next round tries again). ``take``: this round's work instead of the
        schedule's own (the server's start runs its own round of a task, counted with the
        others)."""
        try:
            if (take or self.take)() is NOT_DUE:
                return
        except Exception as error:  # the next tick tries again; /health says it meanwhile
            self.health.failed(error)
            # a warning, as before: the server goes on; /health shows it amber meanwhile
            log.warning("%s failed (%d in a row): %s", self.name, self.health.failures,
                        log_line(error))
        else:
            if self.health.failures:
                log.warning("%s succeeded again after %d failed rounds", self.name,
                            self.health.failures)
            self.health.succeeded()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
