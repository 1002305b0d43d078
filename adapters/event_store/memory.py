"""The in-memory event store: the library's plain-Python store, serialising on read.

A ``memory`` store keeps nothing once its process ends, so most of what is appended to it
(a backtest's tens of thousands of events) is never read back. Each appended event is still
checked (one version after the last of its aggregate, unique within the batch) and takes its
place in the log at once, but is kept as the domain event itself: its stored form, and its
JSON state, are made the first time something asks for them (loading an aggregate, reading
notifications, comparing streams). What is read is exactly what a durable store would have
written, byte for byte (tests compare the two).

Domain events are immutable, so serialising later gives the same bytes as serialising now.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing import popo
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
)

from application.library_seam import MEMORY_STORE, fast_path
from domain.recording import topic_of


class PendingStoredEvent(StoredEvent):
    """A :class:`StoredEvent` whose ``state`` is encoded on first access."""

    def __init__(self, event: Any, mapper: Mapper) -> None:
        self.__dict__.update(originator_id=event.originator_id,
                             originator_version=event.originator_version,
                             topic=topic_of(type(event)), _pending=(event, mapper))

    def __getattr__(self, name: str) -> Any:
        if name != "state":
            raise AttributeError(name)
        event, mapper = self._pending
        state = mapper.to_stored_event(event).state
        self.__dict__.update(state=state, _pending=None)
        return state


class MemoryRecorder(popo.POPOApplicationRecorder):
    """The library's recorder, whose log may also hold ``(domain event, mapper)`` pairs
    appended by :class:`MemoryEventStore`, turned into stored events when read. Its index is
    keyed by the originator's id as an integer (``UUID.int``): not by its string, and not by
    the UUID itself, whose ``__hash__`` is Python code run for every event appended."""

    def _insert_events(self, stored_events: Sequence[Any], **_: Any) -> list[int]:
        with self._database_lock:
            index, log = self._stored_events_index, self._stored_events
            first = len(log)
            last_id: Any = None
            versions: dict[int, int] = {}
            for position, entry in enumerate(stored_events, start=first):
                s = entry[0] if type(entry) is tuple else entry
                if s.originator_id is not last_id:  # a batch is runs of one aggregate's
                    last_id, versions = s.originator_id, index[s.originator_id.int]
                if s.originator_version in versions:
                    self._forget(stored_events[: position - first])
                    raise IntegrityError(f"Stored event already recorded: {s.originator_id} "
                                         f"v{s.originator_version}")
                versions[s.originator_version] = position
            log.extend(stored_events)
            return list(range(first + 1, len(log) + 1))

    def _forget(self, entries: Sequence[Any]) -> None:
        """Undo the index entries of a refused batch: all or nothing, like a transaction."""
        for entry in entries:
            s = entry[0] if type(entry) is tuple else entry
            del self._stored_events_index[s.originator_id.int][s.originator_version]

    def append_events(self, events: Sequence[Any], mapper: Mapper) -> list[int]:
        """Append domain events, to be encoded by ``mapper`` when first read."""
        ids = self._insert_events([(event, mapper) for event in events])
        self._notify_listeners()
        return ids

    def _stored(self, position: int) -> StoredEvent:
        entry = self._stored_events[position]
        if type(entry) is tuple:
            entry = self._stored_events[position] = PendingStoredEvent(*entry)
        return entry

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        key = (UUID(originator_id) if isinstance(originator_id, str) else originator_id).int
        with self._database_lock:
            versions = self._stored_events_index.get(key, {})
            chosen = [
                position
                for version, position in versions.items()
                if (gt is None or version > gt) and (lte is None or version <= lte)
            ]
            if desc:
                chosen.reverse()
            return [self._stored(p) for p in chosen[:limit]]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        with self._database_lock:
            first = 1 if start is None else max(start + (0 if inclusive_of_start else 1), 1)
            last = len(self._stored_events) if stop is None else min(
                stop, len(self._stored_events))
            found: list[Notification] = []
            for notification_id in range(first, last + 1):
                s = self._stored(notification_id - 1)
                if topics and s.topic not in topics:
                    continue
                found.append(Notification(id=notification_id, originator_id=s.originator_id,
                                          originator_version=s.originator_version,
                                          topic=s.topic, state=s.state))
                if len(found) == limit:
                    break
            return found


class _Recordings(Sequence):
    """The recordings of one append, made only if someone looks at them (the engine only
    counts them)."""

    def __init__(self, events: Sequence[Any], ids: list[int], recorder: MemoryRecorder):
        self.events, self.ids, self.recorder = events, ids, recorder

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        s = self.recorder._stored(self.ids[i] - 1)
        return Recording(self.events[i], Notification(
            id=self.ids[i], originator_id=s.originator_id,
            originator_version=s.originator_version, topic=s.topic, state=s.state))

    def __iter__(self) -> Iterator[Recording]:
        return (self[i] for i in range(len(self)))


class MemoryEventStore(EventStore):
    def put(self, domain_events: Sequence[Any], **_: Any) -> Sequence[Recording]:
        events = list(domain_events)
        recorder: MemoryRecorder = self.recorder  # type: ignore[assignment]
        return _Recordings(events, recorder.append_events(events, self.mapper), recorder)


class Factory(popo.POPOFactory):
    """The store above, a fast path through the POPO recorder's internals (its
    ``_stored_events``, ``_stored_events_index``, ``_database_lock``): when
    ``application.library_seam`` says no, the library's own POPO store."""

    def application_recorder(self) -> Any:
        if not fast_path(MEMORY_STORE, self.env):
            return super().application_recorder()
        return MemoryRecorder()

    def event_store(self, mapper=None, recorder=None) -> Any:
        recorder = recorder or self.application_recorder()
        if not isinstance(recorder, MemoryRecorder):
            return super().event_store(mapper=mapper, recorder=recorder)
        return MemoryEventStore(mapper=mapper or self.mapper(), recorder=recorder)
