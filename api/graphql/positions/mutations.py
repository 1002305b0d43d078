"""openPosition, adoptPosition, placeOco, placeTrailingStop, cancelExit, closePosition:
each translates its input and calls ``application.positions.Positions``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql.commands import execute
from api.graphql.common import field_error, parse_uuid
from api.graphql.permissions import IsAuthenticated
from api.graphql.positions.types import (
    AdoptPositionInput,
    OpenPositionInput,
    PlaceOcoInput,
    PlaceTrailingStopInput,
    Position,
    PositionErrors,
    PositionExit,
    PositionExitResult,
    PositionResult,
)
from application.positions import Trail
from domain import positions as domain
from domain.errors import DomainError
from domain.orders import OrderSide

LOG = logging.getLogger("tradetape.graphql")


async def _run(info: Info, command: Callable[[Any, Any], Any]) -> Any:
    """Run ``command(service, owner)``; a refusal is a ``PositionErrors`` (one log line).
    The answer is taken under the runner's lock, as the command left it: the next candle
    may change the aggregates right after."""
    ctx = info.context
    service, owner = ctx.runtime.positions, ctx.principal.user_id

    def run() -> Any:
        with service.paper.lock:
            return _answer(service, command(service, owner))

    try:
        return await execute(ctx.runtime, run)
    except DomainError as error:
        LOG.info("graphql refused code=%s", error.code)
        first = field_error(error)
        return PositionErrors(code=first.code, message=first.message, errors=[first])


def _answer(service: Any, found: Any) -> Position | PositionExit:
    if isinstance(found, domain.PositionExit):
        return PositionExit.of(found)
    return Position.of(service.view(found))


def _trail(input: Any) -> Trail | None:
    """A trailing stop's fields of an input, or None when it gives none of them."""
    trail = Trail(input.trail_percent, input.trail_amount, input.activation_price)
    return None if trail == Trail() else trail


def _id(text: str | None) -> str | None:
    return None if text is None else str(text)


@strawberry.type
class PositionMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Buy into a position of your own at market, or with a limit price"))
    async def open_position(self, info: Info, input: OpenPositionInput) -> PositionResult:
        return await _run(info, lambda s, owner: s.open_position(
            owner, exchange_account_id=_id(input.exchange_account_id), pair=input.pair,
            quote_amount=input.quote_amount, amount=input.amount,
            limit_price=input.limit_price, trail=_trail(input)))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Manage units your account already holds as a position (no order is sent)"))
    async def adopt_position(self, info: Info, input: AdoptPositionInput) -> PositionResult:
        return await _run(info, lambda s, owner: s.adopt_position(
            owner, exchange_account_id=_id(input.exchange_account_id), pair=input.pair,
            amount=input.amount, entry_price=input.entry_price))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Attach an OCO exit: a take-profit limit sell and a stop; one filling cancels the "
        "other"))
    async def place_oco(self, info: Info, input: PlaceOcoInput) -> PositionExitResult:
        return await _run(info, lambda s, owner: s.add_oco(
            owner, parse_uuid(input.position_id), take_profit_price=input.take_profit_price,
            stop_price=input.stop_price, stop_limit_price=input.stop_limit_price,
            amount=input.amount))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Attach a trailing stop: a sell follows the highest price, a buy the lowest"))
    async def place_trailing_stop(self, info: Info,
                                  input: PlaceTrailingStopInput) -> PositionExitResult:
        return await _run(info, lambda s, owner: s.add_trailing_stop(
            owner, parse_uuid(input.position_id), side=OrderSide(input.side.value),
            trail=_trail(input) or Trail(), amount=input.amount))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Cancel an exit of one of your positions (its resting order is cancelled)"))
    async def cancel_exit(self, info: Info, id: strawberry.ID) -> PositionExitResult:
        return await _run(info, lambda s, owner: s.cancel_exit(owner, parse_uuid(id)))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Cancel every exit of one of your positions and sell it at market"))
    async def close_position(self, info: Info, id: strawberry.ID) -> PositionResult:
        return await _run(info, lambda s, owner: s.close_position(owner, parse_uuid(id)))
