"""Each bot's daily P/L series: one query per batch of bots."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import portfolio
from projections.tables import Row


def pnl_series_by_bot(read: ReadSide) -> DataLoader[str, list[Row]]:
    async def load(ids: list[str]) -> list[list[Row]]:
        found = read.run(portfolio.pnl_series, ids)
        return [found.get(i, []) for i in ids]

    return DataLoader(load_fn=load)
