"""``dealEvents``: every event of the caller's deals and their orders, whichever bot they
belong to, on one websocket (a dashboard need not open one per bot)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql.event_types import EventType, kind_of
from api.graphql.interest import Interest, drain, kind
from api.graphql.permissions import IsAuthenticated
from api.graphql.scalars import JSON
from projections import queries
from projections.history import ENVELOPE, plain

SHOWN = ("Deal.", "Order.")


@strawberry.type
class DealEvent:
    bot_id: strawberry.ID | None
    deal_id: strawberry.ID | None
    type: str  # e.g. "Deal.Opened", "Order.Filled"
    aggregate_id: strawberry.ID
    version: int
    at: datetime
    actor: str | None
    data: JSON

    @strawberry.field(description="type as the EventType enum")
    def kind(self) -> EventType | None:
        return kind_of(self.type)


class Links:
    """Which bot and deal each followed deal or order belongs to, learnt from the views at
    the start and from the events that create them after."""

    def __init__(self, known: dict[str, tuple[str, str]]):
        self.known = known

    def event(self, event: Any) -> DealEvent:
        oid = str(event.originator_id)
        if kind(event) == "Deal.Opened":
            self.known[oid] = (str(event.bot_id), oid)
        elif kind(event) == "Order.Submitted" and getattr(event, "deal_id", None):
            self.known[oid] = (str(event.bot_id), str(event.deal_id))
        bot_id, deal_id = self.known.get(oid, (None, None))
        return DealEvent(
            bot_id=bot_id and strawberry.ID(bot_id), deal_id=deal_id and strawberry.ID(deal_id),
            type=kind(event), aggregate_id=strawberry.ID(oid),
            version=event.originator_version, at=event.timestamp,
            actor=getattr(event, "actor", None),
            data={k: plain(v, k) for k, v in vars(event).items() if k not in ENVELOPE})


@strawberry.type
class DealSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated], description=(
        "Every event of your deals and their orders, of all your bots, as they are recorded"))
    async def deal_events(self, info: Info) -> AsyncGenerator[DealEvent, None]:
        ctx = info.context
        owner = ctx.user_id
        interest = Interest(lambda e: getattr(e, "owner_id", None) == owner
                            and kind(e).startswith(SHOWN))
        feed = ctx.runtime.changes
        subscription, queue = feed.subscribe(interest)
        try:
            links = Links(await ctx.read.run_async(queries.deal_links, owner))
            interest.follow(links.known)
            while True:
                batch = [await queue.get(), *drain(queue)]
                ctx.reauthenticate()
                for event in batch:
                    if kind(event).startswith(SHOWN):
                        yield links.event(event)
        finally:
            feed.unsubscribe(subscription)
