"""createWebhook, setWebhookEnabled, deleteWebhook, rotateWebhookSecret: each answers the
webhook, or ``WebhookErrors`` (another user's webhook is NOT_FOUND). Secrets are never
logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

import strawberry
from strawberry.types import Info

from api.graphql.commands import execute
from api.graphql.common import field_error, parse_uuid
from api.graphql.permissions import IsAuthenticated
from api.graphql.webhooks.types import CreateWebhookInput, Webhook, WebhookErrors, WebhookResult
from application.webhooks import Webhooks, WebhookView
from domain.errors import DomainError, NotFoundError

LOG = logging.getLogger("tradetape.graphql")


async def _run(info: Info, command: Callable[[Webhooks, UUID], WebhookView]) -> WebhookResult:
    ctx = info.context
    owner = ctx.principal.user_id
    try:
        view = await execute(ctx.runtime, lambda: command(ctx.runtime.webhooks, owner))
    except DomainError as error:
        LOG.info("graphql refused code=%s", error.code)  # the code, never the input
        return WebhookErrors.of([field_error(error)])
    return Webhook.of(view)


def _id(text: strawberry.ID, field: str = "id") -> UUID:
    found = parse_uuid(text)
    if found is None:
        raise NotFoundError(f"no such {field}: {text}", field=field)
    return found


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "A new webhook with a random secret, enabled; for one bot of yours, or for signals "
        "that name their bot"))
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> WebhookResult:
        return await _run(info, lambda hooks, owner: hooks.create(
            owner, input.name, None if input.bot_id is None else _id(input.bot_id, "botId"),
            actor=str(owner)))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Enable or disable a webhook: a disabled one refuses every signal (403)"))
    async def set_webhook_enabled(self, info: Info, id: strawberry.ID,
                                  enabled: bool) -> WebhookResult:
        return await _run(info, lambda hooks, owner: hooks.set_enabled(owner, _id(id),
                                                                       enabled))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Delete a webhook: its URL answers 404 from now on"))
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> WebhookResult:
        return await _run(info, lambda hooks, owner: hooks.delete(owner, _id(id)))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "A new secret for a webhook; the old one stops working at once"))
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookResult:
        return await _run(info, lambda hooks, owner: hooks.rotate_secret(owner, _id(id)))
