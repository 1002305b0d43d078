"""``webhooks(first, after)``: the caller's webhooks, oldest first."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.common import cursor_page
from api.graphql.permissions import IsAuthenticated
from api.graphql.webhooks.types import Webhook, WebhookConnection, WebhookEdge


@strawberry.type
class WebhookQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your webhooks (not deleted ones), oldest first (at most 100 a page)"))
    async def webhooks(self, info: Info, first: int | None = 50,
                       after: str | None = None) -> WebhookConnection:
        ctx = info.context
        views = await ctx.read.slow(ctx.runtime.webhooks.list, ctx.principal.user_id)
        page, page_info = cursor_page(views, [str(v.id) for v in views], first, after, "webhook")
        return WebhookConnection(edges=[WebhookEdge(node=Webhook.of(v), cursor=str(v.id))
                                        for v in page], page_info=page_info)
