"""P/L figures per deal (fees, mark price, unrealized P/L): one query per batch."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import portfolio
from projections.tables import Row


def pnl_by_deal(read: ReadSide) -> DataLoader[str, Row | None]:
    async def load(ids: list[str]) -> list[Row | None]:
        found = read.run(portfolio.pnl_by_deal, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)
