"""Pages of deals, keyed by ``(owner, bot id, status, first, after)``."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import queries

DealPageKey = tuple[str | None, str | None, str | None, int | None, str | None]


def deal_pages(read: ReadSide) -> DataLoader[DealPageKey, queries.Page]:
    async def load(keys: list[DealPageKey]) -> list[queries.Page | Exception]:
        pages: list[queries.Page | Exception] = []
        for owner, bot_id, status, first, after in keys:
            try:
                pages.append(read.run(queries.deals_page, owner=owner, bot_id=bot_id,
                                      status=status, first=first, after=after))
            except queries.InvalidCursorError as error:
                pages.append(error)
        return pages

    return DataLoader(load_fn=load)
