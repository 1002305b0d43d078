"""Queries: ``portfolio(asOf)``, ``pnlSeries(botId)`` (null for a bot not yours) and the
public ``leaderboard``."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import parse_uuid, utc
from api.graphql.permissions import IsAuthenticated, Public
from api.graphql.portfolio.types import LeaderboardEntry, PnlPoint, Portfolio


@strawberry.type
class PortfolioQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your balances and P/L; with asOf, as the events recorded by then had them (slow: "
        "the log is replayed)"))
    async def portfolio(self, info: Info, as_of: datetime | None = None) -> Portfolio:
        ctx = info.context
        moment = utc(as_of)
        if moment is not None and moment > datetime.now(UTC):
            # Recorded time is the database's wall clock, whatever clock the server runs on.
            raise GraphQLError(f"asOf {moment.isoformat()} is in the future",
                               extensions={"code": "AS_OF_IN_FUTURE"})
        found = await ctx.loaders.portfolios.load((ctx.user_id, moment))
        return Portfolio.of(found, ctx.runtime if moment is None else None)

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "A bot's realized P/L per UTC day with activity; null for a bot not yours"))
    async def pnl_series(self, info: Info, bot_id: strawberry.ID) -> list[PnlPoint] | None:
        ctx = info.context
        key = str(parse_uuid(bot_id)) if parse_uuid(bot_id) else None
        bot = await ctx.loaders.bots.load(key) if key else None
        if bot is None or not ctx.can_see(bot["owner_id"]):
            return None
        return [PnlPoint.from_row(r) for r in await ctx.loaders.pnl_series.load(key)]

    @strawberry.field(permission_classes=[Public], description=(
        "Bots whose owners listed them, ranked by ROI (at most 100)"))
    async def leaderboard(self, info: Info, first: int = 20) -> list[LeaderboardEntry]:
        rows = await info.context.loaders.leaderboards.load(max(1, min(first, 100)))
        return [LeaderboardEntry(**{**r, "bot_id": strawberry.ID(r["bot_id"])}) for r in rows]
