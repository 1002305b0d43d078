"""Aggregate histories (time travel), keyed by ``(aggregate id, as of)``: read from the
event log on a worker thread."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from application.trading import Trading
from projections.history import AggregateHistory, aggregate_history

HistoryKey = tuple[UUID, datetime | None]


def histories(trading: Trading, read: ReadSide) -> DataLoader[HistoryKey,
                                                               AggregateHistory | None]:
    async def load(keys: list[HistoryKey]) -> list[AggregateHistory | None]:
        return [await read.slow(aggregate_history, trading, aggregate_id, as_of)
                for aggregate_id, as_of in keys]

    return DataLoader(load_fn=load)
