"""An owner's bots that are not stopped (for the per-user limit and unique names)."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import queries
from projections.tables import Row


def active_bots_by_owner(read: ReadSide) -> DataLoader[str, list[Row]]:
    async def load(owners: list[str]) -> list[list[Row]]:
        return [read.run(queries.active_bots, owner) for owner in owners]

    return DataLoader(load_fn=load, cache=False)
