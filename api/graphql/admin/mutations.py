"""``blockUser(id)`` and ``unblockUser(id)`` for administrators: blocking ends the user's
sessions and pauses their running bots; unblocking leaves the bots paused (their owner
restarts them). The same use cases as ``tradetape users block|unblock``."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import strawberry
from strawberry.types import Info

from api.graphql.accounts.types import User
from api.graphql.admin.types import AdminErrors, AdminUserResult
from api.graphql.commands import execute
from api.graphql.common import FieldError, field_error, parse_uuid
from api.graphql.permissions import IsAdminAnsweringErrors, IsAuthenticated
from domain.errors import DomainError


async def _change(info: Info, user_id: strawberry.ID,
                  change: Callable[[UUID, str], object]) -> AdminUserResult:
    if not info.context.principal.is_admin:  # answered in the union, like emergencyStop
        return AdminErrors.of([FieldError(code="ADMIN_REQUIRED",
                                          message="only an administrator can do that")])
    key = parse_uuid(user_id)
    if key is None:
        return AdminErrors.of([FieldError(code="NOT_FOUND", message="no user has this id",
                                          field="id")])
    actor = info.context.user_id
    try:
        view = await execute(info.context.runtime, lambda: change(key, actor))
    except DomainError as error:  # the id names no user: the field is the id
        return AdminErrors.of([field_error(error, "id" if error.code == "NOT_FOUND" else None)])
    return User.of(view)


@strawberry.type
class AdminMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdminAnsweringErrors], description=(
        "Block a user: their sessions end and their running bots pause"))
    async def block_user(self, info: Info, id: strawberry.ID) -> AdminUserResult:
        return await _change(info, id, info.context.runtime.identity.block)

    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdminAnsweringErrors], description=(
        "Unblock a user; their bots stay paused until they start them"))
    async def unblock_user(self, info: Info, id: strawberry.ID) -> AdminUserResult:
        return await _change(info, id, info.context.runtime.identity.unblock)
