"""``Webhook`` (its URL and secret, shown to its owner only), its signals, and the answers of
its mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import FieldError, PageInfo
from application.webhooks import WebhookView
from domain.webhooks import RECENT_SIGNALS


@strawberry.type(description="One signal the webhook received, accepted or refused")
class WebhookSignal:
    number: int
    received_at: datetime
    signal_id: str | None = strawberry.field(description="the sender's id, if it sent one")
    action: str | None
    outcome: str = strawberry.field(description=(
        "accepted (being acted on), done, refused (code says why) or ignored (an id "
        "already received)"))
    code: str | None
    message: str
    deal_id: strawberry.ID | None


@strawberry.type(description=(
    "Where outside signals (TradingView alerts, scripts) start and close your deals: POST "
    "JSON to url, with the secret in the body or an X-Tradetape-Signature header"))
class Webhook:
    id: strawberry.ID
    name: str
    url: str
    secret: str | None = strawberry.field(description=(
        "send it as the body's \"secret\", or sign the body with it (HMAC-SHA256)"))
    enabled: bool
    bot_id: strawberry.ID | None = strawberry.field(description=(
        "the bot its signals trade; none: each signal names its bot_id"))
    created_at: datetime
    signals_received: int

    @strawberry.field(description=f"the last signals, newest first (at most {RECENT_SIGNALS})")
    async def signals(self, info: Info, last: int = 100) -> list[WebhookSignal]:
        if not 1 <= last <= RECENT_SIGNALS:
            raise GraphQLError(f"last must be 1 to {RECENT_SIGNALS}",
                               extensions={"code": "INVALID_PAGE_SIZE", "field": "signals",
                                           "argument": "last", "min": 1,
                                           "max": RECENT_SIGNALS})
        ctx = info.context
        rows = await ctx.read.slow(ctx.runtime.webhooks.signals, ctx.principal.user_id,
                                   self.uuid, last)
        return [WebhookSignal(number=r["number"], received_at=r["at"],
                              signal_id=r["signal_id"], action=r["action"],
                              outcome=r["outcome"], code=r["code"], message=r["message"],
                              deal_id=strawberry.ID(str(r["deal_id"])) if r["deal_id"]
                              else None) for r in rows]

    uuid: strawberry.Private[object]

    @classmethod
    def of(cls, view: WebhookView) -> Webhook:
        return cls(id=strawberry.ID(str(view.id)), name=view.name, url=view.url,
                   secret=view.secret, enabled=view.enabled,
                   bot_id=strawberry.ID(str(view.bot_id)) if view.bot_id else None,
                   created_at=view.created_at, signals_received=view.signals_received,
                   uuid=view.id)


@strawberry.type
class WebhookEdge:
    node: Webhook
    cursor: str


@strawberry.type
class WebhookConnection:
    edges: list[WebhookEdge]
    page_info: PageInfo


@strawberry.type
class WebhookErrors:
    """Why a webhook command was refused: ``code`` is the first error's (NOT_FOUND,
    INVALID_WEBHOOK_NAME, PLAN_LIMIT_REACHED, WEBHOOK_DELETED, ...)."""

    code: str
    message: str
    errors: list[FieldError]

    @classmethod
    def of(cls, errors: list[FieldError]) -> WebhookErrors:
        return cls(code=errors[0].code, message=errors[0].message, errors=errors)


@strawberry.input
class CreateWebhookInput:
    name: str
    bot_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "the bot its signals trade (else each signal names its bot_id)"))


WebhookResult = Annotated[Webhook | WebhookErrors, strawberry.union("WebhookResult")]
