"""``users(first, after)``: every registered user, oldest first, for administrators (the
dashboard's admin page; ``tradetape users list`` on the command line)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.accounts.types import User
from api.graphql.admin.types import UserConnection, UserEdge
from api.graphql.common import PageInfo
from api.graphql.permissions import IsAdmin, IsAuthenticated


@strawberry.type
class AdminQueries:
    @strawberry.field(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "Every registered user, oldest first (at most 100 a page); administrators only"))
    async def users(self, info: Info, first: int | None = 50,
                    after: str | None = None) -> UserConnection:
        ctx = info.context
        views = await ctx.read.slow(ctx.runtime.identity.list_users)
        ids = [str(view.id) for view in views]
        start = 0
        if after is not None:
            if after not in ids:
                raise GraphQLError("the cursor names no user",
                                   extensions={"code": "INVALID_CURSOR"})
            start = ids.index(after) + 1
        page = views[start:start + (first or 50)]
        edges = [UserEdge(node=User.of(view), cursor=str(view.id)) for view in page]
        return UserConnection(edges=edges, page_info=PageInfo(
            has_next_page=start + len(page) < len(views),
            end_cursor=edges[-1].cursor if edges else None))
