"""Portfolios keyed by ``(owner, as of)``: now from the views (two queries), in the past by
replaying the log through the same projections (on a worker thread)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from application.trading import Trading
from projections import portfolio

PortfolioKey = tuple[str, datetime | None]


def portfolios(trading: Trading, read: ReadSide) -> DataLoader[PortfolioKey, dict[str, Any]]:
    async def load(keys: list[PortfolioKey]) -> list[dict[str, Any]]:
        found = []
        for owner, as_of in keys:
            if as_of is None:
                found.append(read.run(portfolio.portfolio, owner))
            else:
                found.append(await read.slow(portfolio.portfolio_as_of, trading, owner, as_of))
        return found

    return DataLoader(load_fn=load)
