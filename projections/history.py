"""Reads that need events rather than views: an aggregate's history and its state at a past
moment (time travel), and the fills of deals (each buy and the exit, from the Deal's own
events). Secrets and sealed personal data are redacted by field name, as in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from itertools import takewhile
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from projections.summaries import REDACTED, SECRET

# What every event carries besides its own data.
ENVELOPE = frozenset({"originator_id", "originator_version", "originator_topic", "timestamp",
                      "actor", "correlation_id"})


@dataclass(frozen=True)
class AggregateHistory:
    aggregate_id: str
    aggregate_type: str
    owner_id: str | None  # None: an aggregate of no user (only administrators see it)
    version: int
    as_of: datetime | None
    events: list[dict[str, Any]]
    state: dict[str, Any]


def aggregate_history(app: Application, aggregate_id: UUID,
                      as_of: datetime | None = None) -> AggregateHistory | None:
    """The events up to ``as_of`` (all of them without it) and the state they make; None
    when there is no such aggregate, or it did not exist yet at ``as_of``."""
    history = list(app.events.get(aggregate_id))
    if as_of is not None:
        history = list(takewhile(lambda event: event.timestamp <= as_of, history))
    if not history:
        return None
    aggregate = None
    for event in history:
        aggregate = event.mutate(aggregate)
    kind = type(aggregate).__name__
    owner = str(aggregate.id) if kind == "User" else getattr(aggregate, "owner_id", None)
    return AggregateHistory(
        aggregate_id=str(aggregate_id), aggregate_type=kind, owner_id=owner,
        version=aggregate.version, as_of=as_of, events=[_event(e) for e in history],
        state={k: plain(v, k) for k, v in vars(aggregate).items() if not k.startswith("_")})


def _event(event: Any) -> dict[str, Any]:
    return {"version": event.originator_version, "at": event.timestamp,
            "type": type(event).__qualname__, "actor": getattr(event, "actor", None),
            "correlation_id": getattr(event, "correlation_id", None),
            "data": {k: plain(v, k) for k, v in vars(event).items() if k not in ENVELOPE}}


def deal_fills(app: Application, deal_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Each deal's fills in order: one read of the deal's events per deal."""
    found: dict[str, list[dict[str, Any]]] = {}
    for deal_id in dict.fromkeys(deal_ids):
        fills = found[deal_id] = []
        for event in app.events.get(UUID(deal_id)):
            name = type(event).__name__
            if name not in ("BuyFilled", "Closed"):
                continue
            fills.append({"order_id": str(event.order_id),
                          "side": "buy" if name == "BuyFilled" else "sell",
                          "price": event.price, "amount": event.amount, "fee": event.fee,
                          "safety_order": getattr(event, "safety_order", None),
                          "at": event.timestamp})
    return found


def deal_sells(app: Application, deal_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Each deal's sells in order: every take profit step that sold part of it
    (``Deal.StepSold``), then the exit that closed it (``Deal.Closed``), which is the last
    step's sell when the last step closed it. ``step``: the take profit step (1 = the
    first), None for an exit that was not one."""
    found: dict[str, list[dict[str, Any]]] = {}
    for deal_id in dict.fromkeys(deal_ids):
        sells = found[deal_id] = []
        for event in app.events.get(UUID(deal_id)):
            name = type(event).__name__
            if name == "StepSold":
                step = event.step
            elif name == "Closed":
                step = (len(sells) + 1 if event.reason.value == "take_profit_step"
                        else None)
            else:
                continue
            sells.append({"order_id": str(event.order_id), "price": event.price,
                          "amount": event.amount, "fee": event.fee, "step": step,
                          "at": event.timestamp})
    return found


def plain(value: Any, name: str = "") -> Any:
    """JSON-ready: Decimals and ids as text, enums as values, times in ISO 8601, value
    objects as dicts; a field whose name looks secret is ``[redacted]``."""
    if name and SECRET.search(name):
        return REDACTED
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if callable(getattr(value, "recorded", None)):  # a configuration: what its events hold
        return plain(value.recorded(), name)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), f.name) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value
