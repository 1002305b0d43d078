"""A lock on the shape of every stored event.

Events already in a user's store must stay readable: an event whose fields change needs a
``class_version`` bump and an ``upcast_vN_vM`` that turns old stored state into the new shape.
After such a deliberate change, rewrite the lock with::

    .venv/bin/python -m tests.unit.test_event_schemas
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import resolve_topic

import domain
from domain.recording import TradetapeAggregate

LOCK = Path(__file__).resolve().parent.parent / "event_schemas.json"
UPDATE_HINT = "rewrite the lock with `python -m tests.unit.test_event_schemas`"


def _event_classes() -> dict[str, type]:
    """Every event class defined in ``domain``, by topic. The library redefines nested event
    classes on their aggregate; the class the topic resolves to is the one stored."""
    for module in pkgutil.iter_modules(domain.__path__, "domain."):
        importlib.import_module(module.name)
    found: dict[str, type] = {}
    pending = [TradetapeAggregate.Event]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.partition(".")[0] == "domain":
            topic = f"{cls.__module__}:{cls.__qualname__}"
            found[topic] = resolve_topic(topic)
    return dict(sorted(found.items()))


def schema_of(cls: type) -> dict[str, Any]:
    return {
        "class_version": getattr(cls, "class_version", 1),
        "fields": {f.name: str(f.type) for f in sorted(fields(cls), key=lambda f: f.name)},
    }


def current_schemas() -> dict[str, dict[str, Any]]:
    return {topic: schema_of(cls) for topic, cls in EVENTS.items()}


def locked_schemas() -> dict[str, dict[str, Any]]:
    return json.loads(LOCK.read_text()) if LOCK.exists() else {}


def drift_problem(topic: str, locked: dict[str, Any], current: dict[str, Any]) -> str | None:
    """What is wrong with ``topic``'s current shape against its locked one, if anything."""
    old, new = locked["class_version"], current["class_version"]
    if new < old:
        return f"event {topic} went back from class_version {old} to {new}"
    if new == old and locked["fields"] != current["fields"]:
        changes = sorted(set(locked["fields"].items()) ^ set(current["fields"].items()))
        return (
            f"event {topic} changed shape without a class_version bump; "
            f"add upcast_v{old}_v{old + 1} and bump class_version (changed: {changes})"
        )
    if new > old:
        return f"event {topic} is now class_version {new} (locked: {old}); {UPDATE_HINT}"
    return None


def missing_upcasters(cls: type) -> list[str]:
    version = getattr(cls, "class_version", 1)
    names = [f"upcast_v{n}_v{n + 1}" for n in range(1, version)]
    return [name for name in names if not callable(getattr(cls, name, None))]


EVENTS = _event_classes()
CURRENT = current_schemas()
LOCKED = locked_schemas()


def test_lock_file_exists_and_lists_events() -> None:
    assert LOCK.exists(), f"{LOCK} is missing; {UPDATE_HINT}"
    assert "domain.bots:Bot.Created" in LOCKED


@pytest.mark.parametrize("topic", sorted(CURRENT))
def test_event_shape_matches_the_lock(topic: str) -> None:
    assert topic in LOCKED, f"new event {topic} is not in {LOCK.name}; {UPDATE_HINT}"
    problem = drift_problem(topic, LOCKED[topic], CURRENT[topic])
    assert problem is None, problem


@pytest.mark.parametrize("topic", sorted(LOCKED))
def test_locked_event_still_exists(topic: str) -> None:
    assert topic in CURRENT, (
        f"event {topic} was removed or renamed; events already stored under this topic "
        "could no longer be read"
    )


@pytest.mark.parametrize("topic", sorted(CURRENT))
def test_event_above_version_1_has_every_upcaster(topic: str) -> None:
    assert missing_upcasters(EVENTS[topic]) == []


@pytest.mark.parametrize("topic", sorted(CURRENT))
def test_event_carries_actor_and_correlation_id(topic: str) -> None:
    assert {"actor", "correlation_id"} <= set(CURRENT[topic]["fields"])


def test_shape_drift_without_version_bump_names_the_upcaster_to_add() -> None:
    locked = {"class_version": 2, "fields": {"amount": "Decimal", "actor": "str"}}
    changed = {"class_version": 2, "fields": {"amount": "str", "actor": "str"}}

    problem = drift_problem("domain.deals:Deal.Closed", locked, changed)

    assert problem is not None
    assert problem.startswith(
        "event domain.deals:Deal.Closed changed shape without a class_version bump; "
        "add upcast_v2_v3 and bump class_version"
    )


def test_shape_change_with_version_bump_asks_for_a_new_lock() -> None:
    locked = {"class_version": 1, "fields": {"actor": "str"}}
    bumped = {"class_version": 2, "fields": {"actor": "str", "mode": "BotMode"}}

    assert "rewrite the lock" in (drift_problem("domain.bots:Bot.Created", locked, bumped) or "")


def test_version_bump_without_upcaster_is_reported() -> None:
    class Bumped:
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict) -> None: ...

    assert missing_upcasters(Bumped) == ["upcast_v2_v3"]


if __name__ == "__main__":
    LOCK.write_text(json.dumps(current_schemas(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(CURRENT)} event schemas to {LOCK}")
