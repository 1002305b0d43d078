"""Bot configurations, from the Bot aggregates (no view keeps them): one event-store read
per bot, on a worker thread; the cost limit counts it as such."""

from __future__ import annotations

from uuid import UUID

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from application.trading import Trading
from domain.dca import DcaConfig
from domain.errors import NotFoundError


def configs_by_bot(trading: Trading, read: ReadSide) -> DataLoader[str, DcaConfig | None]:
    def configs(ids: list[str]) -> list[DcaConfig | None]:
        found: list[DcaConfig | None] = []
        for bot_id in ids:
            try:
                found.append(trading.get_bot(UUID(bot_id)).config)
            except (ValueError, NotFoundError):
                found.append(None)
        return found

    async def load(ids: list[str]) -> list[DcaConfig | None]:
        return await read.slow(configs, ids)

    return DataLoader(load_fn=load)
