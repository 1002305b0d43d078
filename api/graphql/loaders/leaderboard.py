"""The public leaderboard, keyed by how many entries."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import portfolio


def leaderboards(read: ReadSide) -> DataLoader[int, list[dict[str, Any]]]:
    async def load(limits: list[int]) -> list[list[dict[str, Any]]]:
        return [read.run(portfolio.leaderboard, limit) for limit in limits]

    return DataLoader(load_fn=load)
