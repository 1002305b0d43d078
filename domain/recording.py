"""What every Tradetape event carries besides its data: when, who, and as part of what.

Commands take a :class:`Cause` instead of reading a clock: the same causes give the same
events, byte for byte, which is what makes a run replayable and auditable.
"""

from __future__ import annotations

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

    @classmethod
    def _start(cls, event_class: type[Created], id: UUID, cause: Cause, **data: Any) -> Self:
        return cls._create(
            event_class,
            id=id,
            timestamp=cause.at,
            actor=cause.actor,
            correlation_id=cause.correlation_id,
            **data,
        )

    def _record(self, event_class: type[Event], cause: Cause, **data: Any) -> None:
        self.trigger_event(
            event_class,
            timestamp=cause.at,
            actor=cause.actor,
            correlation_id=cause.correlation_id,
            **data,
        )


class ValueEnum(Enum):
    """An enum stored by its value. Not a ``str`` subclass on purpose: JSON would write a
    ``StrEnum`` as a bare string and replay would hand back a ``str``, not the member."""

    def __str__(self) -> str:
        return str(self.value)
