"""Pages of the audit log, keyed by ``(owner, actor, aggregate id, first, after)``."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.graphql.read_side import ReadSide
from projections import queries
from projections.audit_queries import audit_page

AuditPageKey = tuple[str | None, str | None, str | None, int | None, str | None]


def audit_pages(read: ReadSide) -> DataLoader[AuditPageKey, queries.Page]:
    async def load(keys: list[AuditPageKey]) -> list[queries.Page | Exception]:
        pages: list[queries.Page | Exception] = []
        for owner, actor, aggregate_id, first, after in keys:
            try:
                pages.append(read.run(audit_page, owner=owner, actor=actor,
                                      aggregate_id=aggregate_id, first=first, after=after))
            except queries.InvalidCursorError as error:
                pages.append(error)
        return pages

    return DataLoader(load_fn=load)
