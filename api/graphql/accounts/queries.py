"""``me``: the caller."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.accounts.types import User
from api.graphql.permissions import IsAuthenticated


@strawberry.type
class AccountQueries:
    @strawberry.field(permission_classes=[IsAuthenticated])
    async def me(self, info: Info) -> User:
        ctx = info.context
        return User.of(await ctx.loaders.users.load(ctx.user_id))
