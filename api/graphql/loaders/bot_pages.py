"""Pages of an owner's bots, keyed by ``(owner, first, after)``."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import queries

BotPageKey = tuple[str | None, int | None, str | None]


def bot_pages(read: ReadSide) -> DataLoader[BotPageKey, queries.Page]:
    async def load(keys: list[BotPageKey]) -> list[queries.Page | Exception]:
        pages: list[queries.Page | Exception] = []
        for owner, first, after in keys:
            try:
                pages.append(read.run(queries.bots_page, owner, first, after))
            except queries.InvalidCursorError as error:
                pages.append(error)
        return pages

    return DataLoader(load_fn=load)
