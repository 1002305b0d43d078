"""The audit log's entries and an aggregate's history (time travel)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.graphql.common import PageInfo, when
from api.graphql.event_types import EventType, kind_of
from api.graphql.scalars import JSON
from projections.history import AggregateHistory as History
from projections.tables import Row


@strawberry.input
class AuditLogFilter:
    actor: str | None = None
    aggregate_id: strawberry.ID | None = None


@strawberry.type
class AuditEntry:
    position: int
    recorded_at: datetime
    aggregate_type: str
    aggregate_id: strawberry.ID
    version: int
    event_type: str
    actor: str | None
    correlation_id: str | None
    summary: str
    hash: str
    at: datetime = strawberry.field(
        description="the event's own time (when the engine decided it: market time in a "
                    "backtest); recordedAt is when the store recorded it")

    @strawberry.field(description="aggregateType.eventType as the EventType enum")
    def kind(self) -> EventType | None:
        return kind_of(f"{self.aggregate_type}.{self.event_type}")

    @classmethod
    def from_row(cls, row: Row) -> AuditEntry:
        return cls(**{**row, "recorded_at": when(row["recorded_at"]), "at": when(row["at"]),
                      "aggregate_id": strawberry.ID(row["aggregate_id"])})


@strawberry.type
class AuditEdge:
    node: AuditEntry
    cursor: str


@strawberry.type
class AuditConnection:
    edges: list[AuditEdge]
    page_info: PageInfo


@strawberry.type
class HistoryEvent:
    version: int
    at: datetime
    type: str
    actor: str | None
    correlation_id: str | None
    data: JSON


@strawberry.type
class AggregateHistory:
    aggregate_id: strawberry.ID
    aggregate_type: str
    version: int
    as_of: datetime | None
    events: list[HistoryEvent]
    state: JSON

    @classmethod
    def of(cls, found: History) -> AggregateHistory:
        return cls(aggregate_id=strawberry.ID(found.aggregate_id),
                   aggregate_type=found.aggregate_type, version=found.version,
                   as_of=found.as_of, events=[HistoryEvent(**e) for e in found.events],
                   state=found.state)
