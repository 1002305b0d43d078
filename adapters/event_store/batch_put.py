"""The library's ``EventStore.put`` for a batch of thousands of events (a heavy candle's).

eventsourcing 9.5.6 maps each event on its own (``Mapper.to_stored_event``: its topic
looked up, its state copied, id and version popped, the class version asked for) and, after
the insert, makes a ``Recording`` holding a new ``Notification`` for every event, two
frozen dataclasses built field by field, which the engine only reads the positions from.
Here the same stored events are made with what is asked once per kind of event asked once,
and the recordings are made only if someone reads them (``positions`` gives the positions
without them). Same stored events, same bytes, same recordings when read (a test compares
with the library's ``put``). WHY: at 10,000 bots a heavy candle's mapping and recordings
were ~8% of its processor time (py-spy of ``bench_step.py``).

A fast path through the library's internals (what ``put`` and ``to_stored_event`` do,
step by step): ``application.library_seam`` ``stored_events`` says whether it runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.persistence import (
    EventStore,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import get_topic


def to_stored_events(mapper: Mapper, events: Sequence[Any]) -> list[StoredEvent]:
    """``[mapper.to_stored_event(e) for e in events]`` (eventsourcing 9.5.6), each kind's
    topic and class version found once. A mapper of another kind maps them its own way."""
    if type(mapper).to_stored_event is not Mapper.to_stored_event:
        return [mapper.to_stored_event(event) for event in events]
    encode = mapper.transcoder.encode
    compress = mapper.compressor.compress if mapper.compressor else None
    encrypt = mapper.cipher.encrypt if mapper.cipher else None
    kinds: dict[type, tuple[str, int]] = {}
    stored = []
    for event in events:
        kind = type(event)
        found = kinds.get(kind)
        if found is None:
            found = kinds[kind] = (get_topic(kind), getattr(kind, "class_version", 1))
        state = dict(vars(event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        if found[1] > 1:
            state["class_version"] = found[1]
        data = encode(state)
        if compress is not None:
            data = compress(data)
        if encrypt is not None:
            data = encrypt(data)
        stored.append(StoredEvent(originator_id=originator_id,
                                  originator_version=originator_version, topic=found[0],
                                  state=data))
    return stored


class Recordings(Sequence):
    """The recordings of one append, made when read; ``positions``: where the events went
    in the application's log, in order (empty where the recorder gives none)."""

    def __init__(self, events: Sequence[Any], stored: list[StoredEvent],
                 positions: Sequence[int] | None):
        self.events, self.stored = events, stored
        self.positions = list(positions) if positions else []

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        s = self.stored[i]
        return Recording(self.events[i], Notification(
            originator_id=s.originator_id, originator_version=s.originator_version,
            topic=s.topic, state=s.state, id=self.positions[i]))

    def __iter__(self) -> Iterator[Recording]:
        return (self[i] for i in range(len(self)))


class Prepared:
    """An append made ready on one thread (its events mapped, its parameters dumped and
    sealed where the recorder can) to be sent from another (``BatchEventStore.prepare``)."""

    def __init__(self, events: list, stored: list[StoredEvent], parameters: Any):
        self.events, self.stored, self.parameters = events, stored, parameters


class BatchEventStore(EventStore):
    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> Recordings:
        events = list(domain_events)
        stored = to_stored_events(self.mapper, events)
        return self._recorded(events, stored, self.recorder.insert_events(stored, **kwargs))

    def prepare(self, domain_events: Sequence[Any]) -> Prepared:
        """``put``'s work before the database, done now: the events mapped, and what the
        recorder can make of its statements' parameters (``prepare_insert``)."""
        events = list(domain_events)
        stored = to_stored_events(self.mapper, events)
        prepare = getattr(self.recorder, "prepare_insert", None)
        return Prepared(events, stored, prepare(stored) if prepare is not None else None)

    def put_prepared(self, prepared: Prepared) -> Recordings:
        """``put`` of what ``prepare`` made: only the database's part is left."""
        if prepared.parameters is None:
            positions = self.recorder.insert_events(prepared.stored)
        else:
            positions = self.recorder.insert_prepared(prepared.stored, prepared.parameters)
        return self._recorded(prepared.events, prepared.stored, positions)

    @staticmethod
    def _recorded(events: list, stored: list[StoredEvent], positions: Any) -> Recordings:
        if positions:
            assert len(positions) == len(stored)
        return Recordings(events, stored, positions)
