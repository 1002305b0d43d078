"""Each deal's fills, from the deal's own events (one event-store read per deal, on a worker
thread): no view keeps individual fills."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from application.trading import Trading
from projections.history import deal_fills


def fills_by_deal(trading: Trading, read: ReadSide) -> DataLoader[str, list[dict[str, Any]]]:
    async def load(deal_ids: list[str]) -> list[list[dict[str, Any]]]:
        found = await read.slow(deal_fills, trading, deal_ids)
        return [found.get(i, []) for i in deal_ids]

    return DataLoader(load_fn=load)
