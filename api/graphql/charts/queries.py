"""``equityCurve(botId?, from, to, resolution)``: the portfolio's or one bot's realized +
unrealized P/L over time, from the ``equity`` projection (one query, whatever the range)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.charts.types import EquityPoint, Resolution
from api.graphql.common import parse_uuid, utc
from api.graphql.permissions import IsAuthenticated
from projections.equity import CurveError, equity_curve


@strawberry.type
class ChartQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your portfolio's equity (realized + unrealized P/L) from `from` to `to`, one point "
        "per resolution step; with botId, that bot's (null for a bot not yours)"))
    async def equity_curve(
            self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")],
            to: datetime | None = None, bot_id: strawberry.ID | None = None,
            resolution: Resolution = Resolution.HOUR) -> list[EquityPoint] | None:
        ctx = info.context
        scope, scope_id = "owner", ctx.user_id
        if bot_id is not None:
            key = parse_uuid(bot_id)
            bot = await ctx.loaders.bots.load(str(key)) if key else None
            if bot is None or not ctx.can_see(bot["owner_id"]):
                return None
            scope, scope_id = "bot", str(key)
        start, end = utc(from_), utc(to) or ctx.runtime.clock.now()
        try:
            points = await ctx.read.run_async(equity_curve, scope, scope_id, start, end,
                                              resolution.seconds)
        except CurveError as error:
            raise GraphQLError(error.message, extensions={
                "code": error.code, "field": error.field}) from None
        return [EquityPoint(**p) for p in points]
