"""``botEvents(botId)``: every event of the bot, its deals and their orders, pushed as the
engine records them (after each live step, once the read models caught up)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import parse_uuid
from api.graphql.event_types import EventType, kind_of
from api.graphql.interest import Interest, drain, kind
from api.graphql.permissions import IsAuthenticated
from api.graphql.scalars import JSON
from projections import queries
from projections.history import ENVELOPE, plain


@strawberry.type
class BotEvent:
    bot_id: strawberry.ID
    type: str  # e.g. "Deal.Opened", "Order.Filled", "Bot.Paused"
    aggregate_id: strawberry.ID
    version: int
    at: datetime
    actor: str | None
    data: JSON

    @strawberry.field(description="type as the EventType enum")
    def kind(self) -> EventType | None:
        return kind_of(self.type)

    @classmethod
    def of(cls, bot_id: str, event: Any) -> BotEvent:
        return cls(bot_id=strawberry.ID(bot_id), type=kind(event),
                   aggregate_id=strawberry.ID(str(event.originator_id)),
                   version=event.originator_version, at=event.timestamp,
                   actor=getattr(event, "actor", None),
                   data={k: plain(v, k) for k, v in vars(event).items() if k not in ENVELOPE})


def not_found(what: str) -> GraphQLError:
    return GraphQLError(f"no {what}", extensions={"code": "NOT_FOUND"})


@strawberry.type
class BotSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated])
    async def bot_events(self, info: Info, bot_id: strawberry.ID
                         ) -> AsyncGenerator[BotEvent, None]:
        ctx = info.context
        found = parse_uuid(bot_id)
        key = str(found) if found else ""
        # Fresh caches: this context lives as long as the websocket.
        row = await ctx.fresh_loaders().bots.load(key) if found else None
        if row is None or not ctx.can_see(row["owner_id"]):
            raise not_found(f"bot {bot_id}")
        interest = Interest(lambda e: str(getattr(e, "bot_id", "")) == key, [key])
        feed = ctx.runtime.changes
        subscription, queue = feed.subscribe(interest)
        try:
            deal_ids = [row["open_deal_id"]] if row["open_deal_id"] else []
            interest.follow([*deal_ids, *ctx.read.run(queries.live_order_ids, deal_ids)])
            while True:
                batch = [await queue.get(), *drain(queue)]
                ctx.reauthenticate()  # a token that expired or was revoked ends the stream
                for event in batch:
                    yield BotEvent.of(key, event)
        finally:
            feed.unsubscribe(subscription)
