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

Snapshots are written packed (:class:`PackedSnapshot`): the state as one JSON list, its
attributes' names and kinds in a layout string, their decimals, times, ids and enums as bare
strings. WHY: a start decodes ~26,000 snapshots at 10,000 bots, and the library's JSON of a
state (every such value an object ``{"_type_": .., "_data_": ..}``, every name a key) made
~180 JSON values of each, the largest cost of loading them; the packed one makes ~35.
Older snapshots (``StampedSnapshot``, the library's JSON of the state) are still read.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache, lru_cache, partial
from typing import Any
from uuid import UUID, SafeUUID

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


@dataclass(frozen=True)
class PackedSnapshot(StampedSnapshot):
    """A ``StampedSnapshot`` whose ``state`` is packed: ``[layout, value, ...]``, the
    layout naming each attribute and how its value was written (``_pack``). A process
    running code older than this class cannot resolve its topic: it ignores the snapshot
    and replays the aggregate (never misreads it)."""

    @classmethod
    def take(cls, aggregate: Any) -> PackedSnapshot:
        taken = StampedSnapshot.take(aggregate)
        return cls(originator_id=taken.originator_id, originator_version=taken.originator_version,
                   timestamp=taken.timestamp, topic=taken.topic, state=_pack(taken.state),
                   code=taken.code)

    def unpacked(self) -> PackedSnapshot:
        """The same snapshot with its state as a dict (what ``mutate`` makes the aggregate
        of); a state that does not unpack raises (``decoded`` then passes it over)."""
        if type(self.state) is not list:  # (unpacked already)
            return self
        unpacked = object.__new__(type(self))
        object.__setattr__(unpacked, "__dict__", {**self.__dict__,
                                                  "state": _unpack(self.state)})
        return unpacked

    def mutate(self, _: None) -> Any:
        return Snapshot.mutate(self.unpacked(), None)


# How a packed value was written, by its exact type (an enum: by its class's topic; a dict
# of tuples: "T", see ``_tuples_in``). Any other value (None, text, numbers, a
# configuration, lists) is left to the library's JSON.
_WRITTEN: dict[type, tuple[str, Callable[[Any], Any]]] = {
    Decimal: ("d", str), datetime: ("t", datetime.isoformat), UUID: ("u", lambda u: u.hex)}
# ``SafeUUID.unknown`` looked up once: an enum member read off its class costs ~0.5 us on
# Python 3.11 (a descriptor call), as much as the rest of making a UUID from its hex.
_UNKNOWN_SAFETY = SafeUUID.unknown


def _pack(state: dict[str, Any]) -> list[Any]:
    names, values = [], []
    for name, value in state.items():
        kind = type(value)
        written = _WRITTEN.get(kind)
        if written is not None:
            names.append(f"{name}:{written[0]}")
            values.append(written[1](value))
        elif isinstance(value, Enum):
            names.append(f"{name}:e{get_topic(kind)}")
            values.append(value.value)
        elif _tuples_in(value):
            names.append(f"{name}:T")
            values.append(value)
        else:
            names.append(name)
            values.append(value)
    return ["|".join(names), *values]


def _tuples_in(value: Any) -> bool:
    """A dict whose values are all tuples (an account's ``observed``: asset -> (free,
    locked)). WHY: JSON has no tuple, the library's JSON gives them back as lists, and a
    list never equals a tuple (the wallet monitor compares them): such a snapshot did not
    read back equal, so no account was ever snapshotted and each start replayed them all."""
    return (type(value) is dict and bool(value)
            and all(type(v) is tuple for v in value.values()))


def _as_tuples(mapping: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {key: tuple(value) for key, value in mapping.items()}


def _unpack(packed: list[Any]) -> dict[str, Any]:
    names, typed = _layout(packed[0])
    state = dict(zip(names, packed[1:], strict=True))
    for name, read in typed:
        value = state[name]
        if value is not None:
            state[name] = read(value)
    return state


@lru_cache(maxsize=256)  # a few layouts per aggregate class (which values are None)
def _layout(layout: str) -> tuple[tuple[str, ...], tuple[tuple[str, Callable], ...]]:
    names, typed = [], []
    for entry in layout.split("|"):
        name, _, kind = entry.partition(":")
        names.append(name)
        if kind:
            typed.append((name, _reader(kind)))
    return tuple(names), tuple(typed)


def _reader(kind: str) -> Callable[[Any], Any]:
    if kind == "d":
        return Decimal
    if kind == "t":
        return datetime.fromisoformat
    if kind == "u":
        return uuid_of_hex
    if kind == "T":
        return _as_tuples
    if kind.startswith("e"):
        enum_type = resolve_topic(kind[1:])
        return partial(member_of, enum_type._value2member_map_, enum_type)
    raise ValueError(f"unknown kind of packed value: {kind!r}")


def uuid_of_hex(text: str) -> UUID:
    """``UUID(text)`` for 32 hex digits (the library's, ``_pack``'s), without
    ``UUID.__init__``'s parsing (a sixth of decoding a snapshot of the library's JSON:
    each names its aggregate, bot, deal, account...)."""
    if len(text) != 32 or not text.isalnum():
        return UUID(text)
    made = object.__new__(UUID)
    object.__setattr__(made, "int", int(text, 16))
    object.__setattr__(made, "is_safe", _UNKNOWN_SAFETY)
    return made


def member_of(members: dict[Any, Any], enum_type: Any, value: Any) -> Any:
    """``enum_type(value)``: its first step (the members by value), then the rest of it."""
    try:
        member = members.get(value, members)
    except TypeError:  # unhashable: the rest of it says so
        member = members
    return enum_type(value) if member is members else member


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
            snapshot = mapper.to_domain_event(item)
            if type(snapshot) is PackedSnapshot:
                snapshot = snapshot.unpacked()
        except Exception:
            log.debug("snapshot of %s does not decode: ignored", item.originator_id)
        else:
            yield snapshot


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
