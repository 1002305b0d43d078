"""What administrators see of users: a page of them, and the answer to block/unblock."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.graphql.accounts.types import User
from api.graphql.common import Errors, PageInfo


@strawberry.type
class UserEdge:
    node: User
    cursor: str


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo


@strawberry.type
class AdminErrors(Errors):
    """A refused administration command (ADMIN_REQUIRED, NOT_FOUND...)."""


AdminUserResult = Annotated[User | AdminErrors, strawberry.union("AdminUserResult")]
