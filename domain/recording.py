"""What every Tradetape event carries besides its data: when, who, and as part of what.

Commands take a :class:`Cause` instead of reading a clock: the same causes give the same
events, byte for byte, which is what makes a run replayable and auditable.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Self
from uuid import UUID

from eventsourcing.domain import Aggregate

ENGINE = "engine"
SYSTEM = "system"


@dataclass(frozen=True)
class Cause:
    """``at``: aware UTC time of the decision; ``actor``: a user id, ``system`` or ``engine``;
    ``correlation_id``: ties together every event one request or engine step produced."""

    at: datetime
    actor: str
    correlation_id: str

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Cause.at must be timezone-aware (UTC)")


class TradetapeAggregate(Aggregate):
    """Base of our aggregates: explicit, versioned event classes that carry their cause."""

    def __init__(self) -> None:
        """State is set by the created event's ``apply``; the class annotations document it
        (and would otherwise become a generated ``__init__``)."""

    class Event(Aggregate.Event):
        class_version = 1
        actor: str
        correlation_id: str

    class Created(Event, Aggregate.Created):
        class_version = 1

    def collect_events(self) -> list[Event]:
        """The pending events, oldest first, handed over at once (the library pops them
        one by one from the front)."""
        events, self._pending_events = self._pending_events, []
        return events

    @classmethod
    def _start(cls, event_class: type[Created], id: UUID, cause: Cause, **data: Any) -> Self:
        """The library's ``_create`` for our aggregates, without its generic keyword
        plumbing (the engine creates an order every few candles): the same event, fields in
        the same order, applied to a new aggregate the way the library's ``mutate`` does."""
        if not isinstance(id, UUID):
            raise TypeError(f"{cls.__name__} id must be a UUID, not {id!r}")
        tail = _START_TAILS.get(event_class, _UNKNOWN)
        if tail is _UNKNOWN:
            tail = _own_fields(event_class, _START_FIELDS, _START_TAILS)
        if tail is not None and tuple(data) == tail:  # the hot path: see _record
            event = _made(event_class, {
                "originator_id": id, "originator_version": cls.INITIAL_VERSION,
                "timestamp": cause.at, "originator_topic": topic_of(cls), "actor": cause.actor,
                "correlation_id": cause.correlation_id, **data})
        else:
            data.update(originator_id=id, originator_version=cls.INITIAL_VERSION,
                        timestamp=cause.at, originator_topic=topic_of(cls), actor=cause.actor,
                        correlation_id=cause.correlation_id)
            event = _construct(event_class, data)
        aggregate = cls.__new__(cls)
        aggregate.__base_init__(id, cls.INITIAL_VERSION, cause.at)
        aggregate.__init__()
        event.apply(aggregate)
        aggregate._pending_events.append(event)
        return aggregate

    def _record(self, event_class: type[Event], cause: Cause, **data: Any) -> None:
        """``trigger_event`` without its generic keyword plumbing: the next event of this
        aggregate, applied as the library's ``mutate`` applies it (whose checks, same
        aggregate and next version, hold by construction here)."""
        version = self._version + 1
        tail = _RECORD_TAILS.get(event_class, _UNKNOWN)
        if tail is _UNKNOWN:
            tail = _own_fields(event_class, _RECORD_FIELDS, _RECORD_TAILS)
        if tail is not None and tuple(data) == tail:
            # The hot path: the caller named the event's own fields in their declared order
            # (as every engine call does), so the common fields go first and the state is
            # built in field order at once, as _construct would build it.
            event = _made(event_class, {
                "originator_id": self._id, "originator_version": version,
                "timestamp": cause.at, "actor": cause.actor,
                "correlation_id": cause.correlation_id, **data})
        else:
            data.update(originator_id=self._id, originator_version=version, timestamp=cause.at,
                        actor=cause.actor, correlation_id=cause.correlation_id)
            event = _construct(event_class, data)
        event.apply(self)
        self._version, self._modified_on = version, cause.at
        self._pending_events.append(event)


# The fields every recorded (created) event starts with, in the library's declared order
_RECORD_FIELDS = ("originator_id", "originator_version", "timestamp", "actor", "correlation_id")
_START_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic",
                 "actor", "correlation_id")
# Per event class: its own fields after those, in declared order (None: another layout)
_RECORD_TAILS: dict[type, tuple[str, ...] | None] = {}
_START_TAILS: dict[type, tuple[str, ...] | None] = {}
_UNKNOWN = object()
_LAYOUTS: dict[type, tuple[tuple[str, ...], Any, dict[str, Any]]] = {}
_TOPICS: dict[type, str] = {}
_set_attribute = object.__setattr__


def topic_of(cls: type) -> str:
    """The library's topic of a class (``module:qualname``): what stored events and created
    events name it by."""
    topic = _TOPICS.get(cls)
    if topic is None:
        topic = _TOPICS[cls] = f"{cls.__module__}:{cls.__qualname__}"
    return topic


def _layout(event_class: type) -> tuple[tuple[str, ...], Any, dict[str, Any]]:
    """The field names in declaration order, a getter of their values from a mapping, and
    the defaults."""
    layout = _LAYOUTS.get(event_class)
    if layout is None:
        fields = dataclasses.fields(event_class)
        names = tuple(f.name for f in fields)
        getter = operator.itemgetter(*names) if len(names) > 1 else (
            lambda values, name=names[0]: (values[name],))
        layout = _LAYOUTS[event_class] = (
            names, getter,
            {f.name: f.default for f in fields if f.default is not dataclasses.MISSING})
    return layout


def _own_fields(event_class: type, common: tuple[str, ...],
                tails: dict[type, tuple[str, ...] | None]) -> tuple[str, ...] | None:
    """The fields ``event_class`` declares after ``common``, or None when its fields do not
    start with ``common`` (then every event of it goes through :func:`_construct`)."""
    names = _layout(event_class)[0]
    tail = tails[event_class] = names[len(common):] if names[:len(common)] == common else None
    return tail


def _made(event_class: type, state: dict[str, Any]) -> Any:
    """An instance of ``event_class`` holding ``state`` (every field, in declared order)."""
    event = object.__new__(event_class)
    _set_attribute(event, "__dict__", state)
    return event


def _construct(event_class: type, values: dict[str, Any]) -> Any:
    """An instance of the frozen dataclass ``event_class`` holding ``values``, as its
    generated ``__init__`` builds it (fields in declaration order, defaults filled in),
    without that ``__init__``'s frozen ``__setattr__`` per field."""
    names, getter, defaults = _LAYOUTS.get(event_class) or _layout(event_class)
    state = None
    if len(values) == len(names):  # then every name present means no name is unexpected
        try:  # noqa: SIM105 - the hot path: suppress() would cost more than the build
            state = dict(zip(names, getter(values)))  # noqa: B905 - the getter's own names
        except KeyError:
            pass
    if state is None:
        unexpected = values.keys() - set(names)
        if unexpected:
            raise TypeError(f"can't construct {event_class.__qualname__}: unexpected "
                            f"{', '.join(sorted(unexpected))}")
        missing = [n for n in names if n not in values and n not in defaults]
        if missing:
            raise TypeError(f"can't construct {event_class.__qualname__}: "
                            f"{', '.join(missing)} missing")
        values = {**defaults, **values}
        state = {name: values[name] for name in names}
    event = object.__new__(event_class)
    _set_attribute(event, "__dict__", state)
    return event


class ValueEnum(Enum):
    """An enum stored by its value. Not a ``str`` subclass on purpose: JSON would write a
    ``StrEnum`` as a bare string and replay would hand back a ``str``, not the member."""

    def __str__(self) -> str:
        return str(self.value)
