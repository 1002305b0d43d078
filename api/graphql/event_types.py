"""``EventType``: every kind of stored event as an enum (``Deal_Opened`` for the event type
``Deal.Opened``), made from the domain's event classes so none is ever missing. The event
fields that always answered a string (``type: "Deal.Opened"``, ``eventType: "Opened"``)
keep doing so; ``kind`` beside them answers the enum."""

from __future__ import annotations

import importlib
import pkgutil
from enum import Enum
from typing import Any

import strawberry

import domain
from domain.recording import TradetapeAggregate


def event_kinds() -> list[str]:
    """``Aggregate.Event`` of every event class of every domain module."""
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    found: set[str] = set()
    stack = [TradetapeAggregate.Event]
    while stack:
        for sub in stack.pop().__subclasses__():
            name = sub.__qualname__
            if name.count(".") == 1 and not name.startswith("TradetapeAggregate.") and (
                    not name.endswith(".Event")):
                found.add(name)
            stack.append(sub)
    return sorted(found)


EventType = strawberry.enum(
    Enum("EventType", {kind.replace(".", "_"): kind for kind in event_kinds()}),
    description="A kind of stored event: Aggregate_Event (the type Aggregate.Event)")


def kind_of(text: str) -> Any:
    """The enum member of an event type (``"Deal.Opened"``), None if unknown."""
    try:
        return EventType(text)
    except ValueError:
        return None
