"""Snapshots of aggregates: a disposable cache in front of their events.

A snapshot is the library's (``eventsourcing.domain.Snapshot``: the aggregate's attributes
at a version, in the application's snapshots table, never in the log), with two stamps:

- ``timestamp`` is the aggregate's own time (its last event's), not the wall clock: a
  snapshot is used only while the event at its version carries that same time, so one left
  behind by a log that was restored or rewritten since is ignored;
- ``code`` is a fingerprint of the source of the aggregate's class (its module and those of
  its bases): a snapshot taken by other code is ignored, its aggregate replayed from events.

Nothing needs a snapshot: deleting them all changes no answer, only how many events a load
reads. A snapshot is only written when it reads back equal to the aggregate it was taken of.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.utils import get_topic, resolve_topic

log = logging.getLogger("tradetape.snapshots")


@dataclass(frozen=True)
class StampedSnapshot(Snapshot):
    code: str

    @classmethod
    def take(cls, aggregate: Any) -> StampedSnapshot:
        """The library's ``take`` (the same state), stamped with the aggregate's time."""
        state = {k: v for k, v in vars(aggregate).items()
                 if k not in ("_id", "_version", "_pending_events")}
        class_version = getattr(type(aggregate), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return cls(originator_id=aggregate.id, originator_version=aggregate.version,
                   timestamp=aggregate.modified_on, topic=get_topic(type(aggregate)),
                   state=state, code=code_version(type(aggregate)))


@cache
def code_version(cls: type) -> str:
    """A fingerprint of the code an aggregate class is made of: the source of its module and
    of its bases' modules (ours only). Any change to them gives another fingerprint."""
    digest = hashlib.sha256()
    for module in sorted({k.__module__ for k in cls.__mro__
                          if k.__module__.split(".")[0] in ("domain", "application")}):
        digest.update(module.encode())
        digest.update(inspect.getsource(sys.modules[module]).encode())
    return digest.hexdigest()[:20]


def usable(snapshot: Any) -> bool:
    """Taken by this code of its aggregate's class (else ignored)."""
    try:
        return (isinstance(snapshot, StampedSnapshot)
                and snapshot.code == code_version(resolve_topic(snapshot.topic)))
    except Exception:  # a class that no longer exists: the events still say it all
        return False


def decoded(mapper: Any, stored: Iterable[Any]) -> Iterator[Any]:
    """The stored snapshots that still decode (others, of older shapes, are passed over)."""
    for item in stored:
        try:
            yield mapper.to_domain_event(item)
        except Exception:
            log.debug("snapshot of %s does not decode: ignored", item.originator_id)


class GuardedSnapshots:
    """The snapshot store as the library's repository reads it: only usable snapshots whose
    version's event still carries their time (else none, and the aggregate is replayed)."""

    def __init__(self, snapshots: Any, events: Any):
        self.store, self.events = snapshots, events
        self.recorder = snapshots.recorder

    def put(self, snapshots: list[Any], **kwargs: Any) -> Any:
        return self.store.put(snapshots, **kwargs)

    def get(self, originator_id: UUID, gt: int | None = None, lte: int | None = None,
            desc: bool = False, limit: int | None = None) -> list[Any]:
        stored = self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc,
                                             limit=limit)
        found = [s for s in decoded(self.store.mapper, stored) if usable(s)]
        return [s for s in found if self._matches(s)]

    def _matches(self, snapshot: Any) -> bool:
        version = snapshot.originator_version
        events = list(self.events.get(snapshot.originator_id, gt=version - 1, lte=version))
        return bool(events) and events[0].timestamp == snapshot.timestamp


def round_trips(mapper: Any, snapshot: StampedSnapshot, aggregate: Any) -> bool:
    """The snapshot, stored and read back, gives the aggregate it was taken of."""
    try:
        again = mapper.to_domain_event(mapper.to_stored_event(snapshot)).mutate(None)
    except Exception:
        return False
    return vars(again) == {**vars(aggregate), "_pending_events": []}
