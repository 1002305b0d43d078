"""Administrators' ``emergencyStop(reason)`` and ``emergencyResume``: every bot stops opening
deals and placing orders until trading resumes."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.commands import execute
from api.graphql.common import FieldError, field_error
from api.graphql.permissions import IsAdminAnsweringErrors, IsAuthenticated
from api.graphql.system.status import system_status
from api.graphql.system.types import SystemErrors, SystemResult
from domain.errors import DomainError


async def _switch(info: Info, flip) -> SystemResult:
    ctx = info.context
    if not ctx.principal.is_admin:
        return SystemErrors.of([FieldError(code="ADMIN_REQUIRED",
                                           message="only an administrator can do that")])
    actor = ctx.user_id
    runtime = ctx.runtime

    try:
        await execute(runtime, lambda: flip(runtime.operations, actor))
    except DomainError as error:
        found = field_error(error)
        return SystemErrors.of([found])
    return await ctx.read.slow(system_status, runtime, ctx.token)  # an admin's: in full


@strawberry.type
class SystemMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdminAnsweringErrors])
    async def emergency_stop(self, info: Info, reason: str) -> SystemResult:
        return await _switch(info, lambda ops, actor: ops.emergency_stop(reason, actor))

    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdminAnsweringErrors])
    async def emergency_resume(self, info: Info, reason: str | None = None) -> SystemResult:
        return await _switch(info, lambda ops, actor: ops.emergency_resume(actor, reason))
