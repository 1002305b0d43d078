"""Bots by id, from the bot list view: one query per batch."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import queries
from projections.tables import Row


def bots_by_id(read: ReadSide) -> DataLoader[str, Row | None]:
    async def load(ids: list[str]) -> list[Row | None]:
        found = read.run(queries.bots_by_id, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)
