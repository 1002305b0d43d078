"""Prices: ``candles(pair, timeframe, from, to, file)`` from the server's market or a stored
series, ``markPrice(pair)``, ``candleFiles`` and the ``prices(pairs)`` subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.charts.types import Candle, PriceTick
from api.graphql.common import utc
from api.graphql.permissions import IsAuthenticated
from application.market_tape import series_candles
from domain.errors import DomainError

PRICE_POLL_SECONDS = 0.25  # how often a prices subscription looks for a new candle
MAX_PAIRS = 20


def refused(error: DomainError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": error.code, "field": error.field})


@strawberry.type
class CandleQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Candles of `pair` opening from `from` until `to` (default: now), merged into "
        "`timeframe` steps (1m, 15m, 4h, 1d...). Without `file`: the server's market as its "
        "feed delivered it, on the server's clock (the time deals are stamped with); with "
        "`file`: a stored series (see candleFiles) on its own timestamps"))
    async def candles(self, info: Info, pair: str,
                      from_: Annotated[datetime, strawberry.argument(name="from")],
                      to: datetime | None = None, timeframe: str = "1m",
                      file: str | None = None) -> list[Candle]:
        runtime = info.context.runtime
        start, end = utc(from_), utc(to) or runtime.clock.now() + timedelta(seconds=1)
        try:
            if file is None:
                rows = runtime.loop.tape.candles(pair.strip(), timeframe, start, end)
            else:
                series = await asyncio.to_thread(runtime.candle_library.load, file)
                rows = series_candles(series, timeframe, start, end)
        except DomainError as error:
            raise refused(error) from None
        return [Candle(**row) for row in rows]

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "The stored series `candles(file:)` and `runBacktest` may name"))
    def candle_files(self, info: Info) -> list[str]:
        return info.context.runtime.candle_library.names()

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "The pair's last price on the server's market (null before its first candle)"))
    def mark_price(self, info: Info, pair: str) -> Decimal | None:
        last = info.context.runtime.loop.tape.last(pair.strip())
        return None if last is None else last.close


@strawberry.type
class PriceSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated], description=(
        "Each pair's last price now, then again whenever a candle of it closes"))
    async def prices(self, info: Info, pairs: list[str]) -> AsyncGenerator[PriceTick, None]:
        if not 1 <= len(pairs) <= MAX_PAIRS:
            raise GraphQLError(f"name 1 to {MAX_PAIRS} pairs", extensions={
                "code": "INVALID_ARGUMENT", "field": "pairs"})
        tape, sent = info.context.runtime.loop.tape, {}
        wanted = [p.strip() for p in dict.fromkeys(pairs)]
        while True:
            for pair in wanted:
                last = tape.last(pair)
                if last is not None and sent.get(pair) is not last:
                    sent[pair] = last
                    yield PriceTick(pair=pair, price=last.close, at=last.closed_at)
            version = tape.version
            while tape.version == version:
                await asyncio.sleep(PRICE_POLL_SECONDS)
            info.context.reauthenticate()
