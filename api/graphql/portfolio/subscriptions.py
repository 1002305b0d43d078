"""``portfolioUpdates``: the caller's portfolio now, then again whenever one of their bots,
deals, orders or accounts changes."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from api.graphql.interest import Interest, drain
from api.graphql.permissions import IsAuthenticated
from api.graphql.portfolio.types import Portfolio
from projections import queries


@strawberry.type
class PortfolioSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated])
    async def portfolio_updates(self, info: Info) -> AsyncGenerator[Portfolio, None]:
        ctx = info.context
        owner = ctx.user_id
        interest = Interest(lambda e: getattr(e, "owner_id", None) == owner)
        feed = ctx.runtime.changes
        subscription, queue = feed.subscribe(interest)
        try:
            interest.follow(ctx.read.run(queries.owned_ids, owner))
            while True:
                loaders = ctx.fresh_loaders()  # this context lives as long as the websocket
                yield Portfolio.of(await loaders.portfolios.load((owner, None)), ctx.runtime)
                await queue.get()
                drain(queue)  # one update for every change that arrived meanwhile
                ctx.reauthenticate()
        finally:
            feed.unsubscribe(subscription)
