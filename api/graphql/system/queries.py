"""``systemStatus``: whether trading is halted (and why), and the server's health."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.permissions import Public
from api.graphql.system.status import system_status
from api.graphql.system.types import SystemStatus


@strawberry.type
class SystemQueries:
    @strawberry.field(permission_classes=[Public])
    async def system_status(self, info: Info) -> SystemStatus:
        return await info.context.read.slow(system_status, info.context.runtime,
                                            info.context.token)
