"""The read models for administrators: ``projections`` (each one's position, lag and
whether it is stuck), ``rebuildProjections(names)`` (the rebuild of ``tradetape projections
rebuild``, in the background) and ``projectionRebuildProgress(rebuildId)``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.graphql.admin.types import AdminErrors
from api.graphql.common import FieldError, field_error, parse_uuid
from api.graphql.permissions import IsAdmin, IsAdminAnsweringErrors, IsAuthenticated
from api.graphql.polling import fraction, progress_updates
from application.projection_rebuilds import RebuildProgress
from domain.errors import DomainError


@strawberry.type(description="A read model the server follows: how far it has read the log")
class ProjectionState:
    name: str
    position: int = strawberry.field(description="the last event applied")
    lag: int = strawberry.field(description="events still to apply")
    stuck: bool = strawberry.field(description="cannot advance (the server retries it)")
    error: str | None


@strawberry.type(description="A rebuild of read models asked for from the API")
class ProjectionRebuild:
    id: strawberry.ID
    status: str = strawberry.field(description="queued, running, completed or failed")
    names: list[str]
    requested_by: strawberry.ID
    events_done: int
    events_total: int
    fraction: Decimal = strawberry.field(description="eventsDone / eventsTotal, 0 to 1")
    rebuilt_to: int | None = strawberry.field(description="the log position the new tables "
                                              "reflect, once completed")
    error_code: str | None
    error_message: str | None

    @classmethod
    def of(cls, state: RebuildProgress) -> ProjectionRebuild:
        return cls(id=strawberry.ID(str(state.id)), status=state.status, names=state.names,
                   requested_by=strawberry.ID(state.requested_by), events_done=state.position,
                   events_total=state.head,
                   fraction=fraction(state.position, state.head, state.status),
                   rebuilt_to=state.rebuilt_to, error_code=state.error_code,
                   error_message=state.error_message)


RebuildProjectionsResult = Annotated[ProjectionRebuild | AdminErrors,
                                     strawberry.union("RebuildProjectionsResult")]


def _states(runtime) -> list[ProjectionState]:
    models = runtime.read_models
    lag, stuck = models.lag(), {p["name"]: p for p in models.problems()}
    head = runtime.trading.recorder.max_notification_id() or 0
    return [ProjectionState(name=name, position=head - behind, lag=behind,
                            stuck=name in stuck, error=stuck.get(name, {}).get("error"))
            for name, behind in lag.items()]


def _rebuild_of(info: Info, rebuild_id: strawberry.ID | None) -> RebuildProgress | None:
    rebuilds = info.context.runtime.rebuilds
    if rebuild_id is None:
        return rebuilds.latest()
    key = parse_uuid(rebuild_id)
    return None if key is None else rebuilds.find(key)


@strawberry.type
class ProjectionQueries:
    @strawberry.field(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "Every read model's position, lag and whether it is stuck; administrators only"))
    async def projections(self, info: Info) -> list[ProjectionState]:
        return await asyncio.to_thread(_states, info.context.runtime)

    @strawberry.field(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "A rebuild since the server started (without `id`: the latest); administrators only"))
    def projection_rebuild(self, info: Info,
                           id: strawberry.ID | None = None) -> ProjectionRebuild | None:
        state = _rebuild_of(info, id)
        return None if state is None else ProjectionRebuild.of(state)


@strawberry.type
class ProjectionMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdminAnsweringErrors],
                         description=(
        "Rebuild read models from the whole log in the background (all of them without "
        "`names`): the rebuild at once, its progress on projectionRebuildProgress. Readers "
        "see the old tables until the new ones are swapped in; administrators only"))
    def rebuild_projections(self, info: Info,
                            names: list[str] | None = None) -> RebuildProjectionsResult:
        ctx = info.context
        if not ctx.principal.is_admin:  # answered in the union, like blockUser
            return AdminErrors.of([FieldError(code="ADMIN_REQUIRED",
                                              message="only an administrator can do that")])
        try:
            return ProjectionRebuild.of(ctx.runtime.rebuilds.submit(ctx.user_id, names))
        except DomainError as error:
            return AdminErrors.of([field_error(error)])


@strawberry.type
class ProjectionSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "A rebuild's progress now, then as it moves, ending with its last state"))
    async def projection_rebuild_progress(self, info: Info, rebuild_id: strawberry.ID
                                          ) -> AsyncGenerator[ProjectionRebuild, None]:
        async for shown in progress_updates(
                _rebuild_of(info, rebuild_id), f"no rebuild {rebuild_id}",
                lambda s: (s.status, s.position, s.head), ProjectionRebuild.of):
            yield shown
