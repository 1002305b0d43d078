"""Each deal's orders, oldest first: one query per batch of deals."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import queries
from projections.tables import Row


def orders_by_deal(read: ReadSide) -> DataLoader[str, list[Row]]:
    async def load(deal_ids: list[str]) -> list[list[Row]]:
        found = read.run(queries.orders_by_deal, deal_ids)
        return [found.get(i, []) for i in deal_ids]

    return DataLoader(load_fn=load)
