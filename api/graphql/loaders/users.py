"""Users as people may see them (never a sealed field or a hash), by id."""

from __future__ import annotations

from uuid import UUID

from strawberry.dataloader import DataLoader

from application.user_views import UserView
from domain.errors import NotFoundError


def users_by_id(identity) -> DataLoader[str, UserView | None]:
    async def load(ids: list[str]) -> list[UserView | None]:
        found: list[UserView | None] = []
        for user_id in ids:
            try:
                found.append(identity.get_user(UUID(user_id)))
            except (ValueError, NotFoundError):
                found.append(None)
        return found

    return DataLoader(load_fn=load)
