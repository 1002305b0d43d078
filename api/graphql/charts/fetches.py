"""``fetchCandles(input)``: download an exchange's candles into a stored series in the
background (the download of ``tradetape candles fetch``), watched with
``candleFetchProgress(fetchId)`` or read with ``candleFetch(id)``; once completed the series
is one of ``candleFiles``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.common import Errors, FieldError, field_error, parse_uuid, utc
from api.graphql.permissions import IsAuthenticated
from api.graphql.polling import fraction, progress_updates
from application.candle_fetches import FetchProgress, FetchRequest
from domain.errors import DomainError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_END_MS = 253_402_300_800_000  # 10000-01-01: up to the last closed candle


@strawberry.input(description="The candles to fetch: `pair`'s `timeframe` candles on "
                  "`exchange` (a ccxt id) opening from `from` until `to` (default: up to the "
                  "last closed one); `sandbox`: the exchange's testnet")
class FetchCandlesInput:
    exchange: str
    pair: str
    from_: Annotated[datetime, strawberry.argument(name="from")] = strawberry.field(
        name="from")
    to: datetime | None = None
    timeframe: str = "1m"
    sandbox: bool = False


@strawberry.type(description="A candle series the server is fetching (or fetched) for you")
class CandleFetch:
    id: strawberry.ID
    status: str = strawberry.field(description="queued, running, completed or failed")
    file: str = strawberry.field(description="the stored series' name (see candleFiles)")
    pair: str
    timeframe: str
    candles_done: int
    candles_total: int
    fraction: Decimal = strawberry.field(description="candlesDone / candlesTotal, 0 to 1")
    candles_written: int = strawberry.field(description="candles added to the series")
    gaps: int = strawberry.field(description="stretches the exchange has no candles for")
    error_code: str | None
    error_message: str | None

    @classmethod
    def of(cls, state: FetchProgress) -> CandleFetch:
        return cls(id=strawberry.ID(str(state.id)), status=state.status, file=state.file,
                   pair=state.pair, timeframe=state.timeframe, candles_done=state.done,
                   candles_total=state.total,
                   fraction=fraction(state.done, state.total, state.status),
                   candles_written=state.written, gaps=state.gaps,
                   error_code=state.error_code, error_message=state.error_message)


@strawberry.type
class CandleFetchErrors(Errors):
    """A refused fetch: EXCHANGE_NOT_SUPPORTED, PAIR_NOT_TRADED, INVALID_TIMEFRAME,
    INVALID_TIME, EXCHANGE_UNAVAILABLE, TOO_MANY_CANDLES, CANDLE_DIR_NOT_SET."""


FetchCandlesResult = Annotated[CandleFetch | CandleFetchErrors,
                               strawberry.union("FetchCandlesResult")]


def _ms(moment: datetime) -> int:
    return (utc(moment) - EPOCH) // timedelta(milliseconds=1)


def _request(given: FetchCandlesInput) -> FetchRequest | FieldError:
    from_ms = _ms(given.from_)
    to_ms = NO_END_MS if given.to is None else _ms(given.to)
    if to_ms <= from_ms:
        return FieldError(code="INVALID_TIME", message="to must be after from", field="to")
    exchange, pair = given.exchange.strip().lower(), given.pair.strip().upper()
    if not exchange or "/" not in pair:
        what = "exchange" if not exchange else "pair"
        return FieldError(code="EXCHANGE_NOT_SUPPORTED" if not exchange else "PAIR_NOT_TRADED",
                          message=f"give the {what}, e.g. binance and BTC/USDT", field=what)
    return FetchRequest(exchange, pair, given.timeframe.strip(), from_ms, to_ms,
                        given.sandbox)


def _visible(info: Info, fetch_id: str) -> FetchProgress | None:
    key = parse_uuid(fetch_id)
    state = None if key is None else info.context.runtime.candle_fetches.find(key)
    return state if state is not None and info.context.can_see(state.owner_id) else None


@strawberry.type
class CandleFetchQueries:
    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "A candle fetch of yours since the server started (null for another's or none)"))
    def candle_fetch(self, info: Info, id: strawberry.ID) -> CandleFetch | None:
        state = _visible(info, id)
        return None if state is None else CandleFetch.of(state)


@strawberry.type
class CandleFetchMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Fetch an exchange's candles into a stored series in the background: the fetch at "
        "once, its progress on candleFetchProgress; then the series is in candleFiles. The "
        "same series asked again goes on after its last candle"))
    async def fetch_candles(self, info: Info, input: FetchCandlesInput) -> FetchCandlesResult:
        asked = _request(input)
        if isinstance(asked, FieldError):
            return CandleFetchErrors.of([asked])
        ctx = info.context
        if not ctx.runtime.accepting_commands:
            raise GraphQLError("the server is shutting down", extensions={
                "code": "SHUTTING_DOWN"})
        fetches = ctx.runtime.candle_fetches
        try:  # the exchange's markets are asked for: off the event loop
            history = await asyncio.to_thread(fetches.prepare, asked)
        except DomainError as error:
            return CandleFetchErrors.of([field_error(error)])
        return CandleFetch.of(fetches.submit(ctx.user_id, asked, history))


@strawberry.type
class CandleFetchSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated], description=(
        "A candle fetch's progress now, then as it moves, ending with its last state"))
    async def candle_fetch_progress(self, info: Info, fetch_id: strawberry.ID
                                    ) -> AsyncGenerator[CandleFetch, None]:
        async for shown in progress_updates(
                _visible(info, fetch_id), f"no candle fetch {fetch_id}",
                lambda s: (s.status, s.done, s.total), CandleFetch.of):
            yield shown

