"""The system's state: the trading switch and the server's health."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.graphql.common import Errors
from api.graphql.scalars import JSON


@strawberry.type
class SystemStatus:
    halted: bool
    reason: str | None  # why trading is halted
    accepting_commands: bool
    health: str  # green, amber or red: the worst of the parts
    parts: JSON  # each part's status, response time and details (as /health)


@strawberry.type
class SystemErrors(Errors):
    """A refused command's errors."""

SystemResult = Annotated[SystemStatus | SystemErrors, strawberry.union("SystemResult")]
