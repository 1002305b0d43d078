"""Queries: ``portfolio(asOf)``, ``pnlSeries(botId)`` (null for a bot not yours) and the
public ``leaderboard``."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import parse_uuid, utc
from api.graphql.permissions import IsAuthenticated, Public
from api.graphql.portfolio.types import (
    UNREALIZED_SHOWN,
    LeaderboardEntry,
    PnlPoint,
    Portfolio,
    marked_unrealized,
)
from api.graphql.remarking import marked
from projections.portfolio import leaderboard_as_of


def _past(moment: datetime) -> datetime:
    if moment > datetime.now(UTC):
        # Recorded time is the database's wall clock, whatever clock the server runs on.
        raise GraphQLError(f"asOf {moment.isoformat()} is in the future",
                           extensions={"code": "AS_OF_IN_FUTURE"})
    return moment


async def _leaderboard_as_of(info: Info, limit: int, moment: datetime) -> list[dict]:
    """Replaying the log is costly: only for a logged-in caller, never anonymously."""
    ctx = info.context
    _ = ctx.principal  # AUTHENTICATION_REQUIRED (or why the token fails) without one
    return await ctx.read.slow(leaderboard_as_of, ctx.runtime.trading, limit, moment)


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
        deals = found.get("open_deals") if moment is None else None
        if not deals:
            return Portfolio.of(found, ctx.runtime if moment is None else None)
        portfolio = Portfolio.of(found)  # its open deals marked here, where the figure is
        # noted: a cached answer is marked again at the next price, not made again
        portfolio.unrealized_pnl = marked(info, lambda: marked_unrealized(ctx.runtime, deals),
                                          UNREALIZED_SHOWN)
        return portfolio

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
        "Bots whose owners listed them, ranked by ROI (at most 100); with asOf (logged-in "
        "callers only: the log is replayed), as the events recorded by then had them"))
    async def leaderboard(self, info: Info, first: int = 20,
                          as_of: datetime | None = None) -> list[LeaderboardEntry]:
        limit = max(1, min(first, 100))
        if as_of is None:
            rows = await info.context.loaders.leaderboards.load(limit)
        else:
            rows = await _leaderboard_as_of(info, limit, _past(utc(as_of)))
        return [LeaderboardEntry(**{**r, "bot_id": strawberry.ID(r["bot_id"])}) for r in rows]
