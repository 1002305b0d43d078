"""Rebuilding read models from a running server (GraphQL ``rebuildProjections``, for
administrators): the same rebuild as ``tradetape projections rebuild`` (shadow tables, one
swap), on a thread of its own, one at a time, with its progress in memory for the
subscription that watches it. The projections the server follows find the swap at their next
batch and carry on from the new tables; readers see the old tables until then."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from uuid import UUID

from domain.errors import DomainError
from domain.ports import IdSource

log = logging.getLogger("tradetape.projections")


@dataclass
class RebuildProgress:
    id: UUID
    names: list[str]
    requested_by: str
    status: str = "queued"  # queued, running, completed, failed
    position: int = 0  # events replayed so far
    head: int = 0  # of this many
    rebuilt_to: int | None = None  # the log position the new tables reflect
    error_code: str | None = None
    error_message: str | None = None
    problems: list[str] = field(default_factory=list)


class ProjectionRebuilds:
    def __init__(self, rebuild: Callable[[Sequence[str], Callable[[int, int], None]], int],
                 known: Callable[[Sequence[str] | None], list[str]], ids: IdSource):
        """``rebuild(names, on_progress)``: the position the rebuilt tables reflect;
        ``known(names)``: the names to rebuild (all for none), or a DomainError
        UNKNOWN_PROJECTION."""
        self._rebuild, self._known, self.ids = rebuild, known, ids
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild")
        self._lock = threading.Lock()
        self.progress: dict[UUID, RebuildProgress] = {}
        self._stopping = threading.Event()

    def submit(self, actor: str, names: Sequence[str] | None) -> RebuildProgress:
        """Queue a rebuild of ``names`` (all for none); refused with REBUILD_RUNNING while
        another is queued or under way."""
        chosen = self._known(names)
        with self._lock:
            if any(p.status in ("queued", "running") for p in self.progress.values()):
                raise DomainError("a rebuild is already under way: wait for it to end",
                                  code="REBUILD_RUNNING")
            state = RebuildProgress(self.ids.new_id(), chosen, actor)
            self.progress[state.id] = state
        log.info("rebuild of %s requested by %s", ", ".join(chosen), actor)
        self._pool.submit(self._work, state)
        return state

    def find(self, rebuild_id: UUID) -> RebuildProgress | None:
        with self._lock:
            return self.progress.get(rebuild_id)

    def latest(self) -> RebuildProgress | None:
        with self._lock:
            return next(reversed(self.progress.values()), None)

    def _work(self, state: RebuildProgress) -> None:
        state.status = "running"

        def advance(position: int, head: int) -> None:
            state.position, state.head = position, max(head, position)
            if self._stopping.is_set():  # the shadow tables are left unswapped
                raise DomainError("the server is stopping", code="SERVER_STOPPING")

        try:
            state.rebuilt_to = self._rebuild(state.names, advance)
        except Exception as error:  # said on the rebuild's state; the server goes on
            code = getattr(error, "code", None) or "REBUILD_FAILED"
            message = getattr(error, "message", None) or "the rebuild failed"
            if getattr(error, "code", None) is None:
                log.exception("rebuild %s failed", state.id)
            else:
                log.warning("rebuild %s failed: %s", state.id, code)
            state.status, state.error_code, state.error_message = "failed", code, message
            return
        state.position = state.head = max(state.head, state.rebuilt_to or 0)
        state.status = "completed"

    def close(self) -> None:
        """A rebuild under way stops at its next batch, before its swap: the live tables
        stay as they were (the next rebuild starts its shadow tables afresh)."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
