"""``Position`` and ``PositionExit`` (with each exit's live levels) and the answers of the
position mutations. Shapes derived from the domain's enums."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from api.graphql.common import FieldError, PageInfo
from api.graphql.deals.enums import OrderSide as Side
from application.positions import PositionView
from domain import positions as domain
from domain.orders import Order

PositionStatus = strawberry.enum(domain.PositionStatus, name="PositionStatus")
ExitKind = strawberry.enum(domain.ExitKind, name="ExitKind")
ExitStatus = strawberry.enum(domain.ExitStatus, name="ExitStatus")


@strawberry.type(description=(
    "An exit order group of a position: an OCO (take profit and stop, one cancels the "
    "other) or a trailing stop, with its levels as the engine holds them now"))
class PositionExit:
    id: strawberry.ID
    position_id: strawberry.ID
    kind: ExitKind
    side: Side
    status: ExitStatus
    amount: Decimal = strawberry.field(description="units it sells (buys, for a buy stop)")
    take_profit_price: Decimal | None
    stop_price: Decimal | None
    stop_limit_price: Decimal | None
    trail_percent: Decimal | None
    trail_amount: Decimal | None
    activation_price: Decimal | None
    extreme: Decimal | None = strawberry.field(description=(
        "trailing: the highest price since it started (a sell stop), the lowest (a buy "
        "stop); null until activated"))
    level: Decimal | None = strawberry.field(description=(
        "the price that triggers it now: a trailing stop's moving level, an OCO's stop"))
    leg: str | None = strawberry.field(description=(
        "the leg that triggered or filled: take_profit, stop or trailing"))
    fill_price: Decimal | None
    reason: str | None
    attached_at: datetime

    @classmethod
    def of(cls, group: domain.PositionExit) -> PositionExit:
        level = group.level if group.kind is domain.ExitKind.TRAILING_STOP else group.stop_price
        return cls(
            id=strawberry.ID(str(group.id)), position_id=strawberry.ID(str(group.position_id)),
            kind=group.kind, side=Side(group.side.value), status=group.status, amount=group.amount,
            take_profit_price=group.take_profit_price, stop_price=group.stop_price,
            stop_limit_price=group.stop_limit_price, trail_percent=group.trail_percent,
            trail_amount=group.trail_amount, activation_price=group.activation_price,
            extreme=group.extreme, level=level, leg=group.leg, fill_price=group.fill_price,
            reason=group.reason, attached_at=group.attached_at)


@strawberry.type(description="An order of a position, with the leg it was sent for")
class PositionOrder:
    id: strawberry.ID
    leg: str = strawberry.field(description=(
        "entry, take_profit, stop, trailing, close or emergency_exit"))
    side: Side
    type: str
    price: Decimal | None
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    fees: Decimal
    status: str
    reason: str | None

    @classmethod
    def of(cls, leg: str, order: Order) -> PositionOrder:
        return cls(id=strawberry.ID(str(order.id)), leg=leg, side=Side(order.side.value),
                   type=str(order.type), price=order.price, amount=order.amount,
                   filled=order.filled, average_price=order.average_price, fees=order.fees,
                   status=str(order.status), reason=order.reason)


@strawberry.type(description="A position of yours outside any bot, and its exits")
class Position:
    id: strawberry.ID
    exchange_account_id: strawberry.ID
    pair: str
    entry: str = strawberry.field(description="market, limit or adopted")
    status: PositionStatus
    units: Decimal
    units_bought: Decimal
    entry_price: Decimal | None
    cost: Decimal
    fees: Decimal
    proceeds: Decimal
    realized_pnl: Decimal | None
    close_reason: str | None
    opened_at: datetime
    closed_at: datetime | None
    exits: list[PositionExit]
    orders: list[PositionOrder]

    @classmethod
    def of(cls, view: PositionView) -> Position:
        position = view.position
        return cls(
            id=strawberry.ID(str(position.id)),
            exchange_account_id=strawberry.ID(position.exchange_account_id),
            pair=position.pair, entry=position.entry, status=position.status,
            units=position.units, units_bought=position.units_bought,
            entry_price=position.entry_price, cost=position.cost, fees=position.fees,
            proceeds=position.proceeds, realized_pnl=position.realized_pnl,
            close_reason=position.close_reason, opened_at=position.opened_at,
            closed_at=position.closed_at, exits=[PositionExit.of(e) for e in view.exits],
            orders=[PositionOrder.of(leg, order) for leg, order in view.orders])


@strawberry.type
class PositionEdge:
    node: Position
    cursor: str


@strawberry.type
class PositionConnection:
    edges: list[PositionEdge]
    page_info: PageInfo


@strawberry.type
class PositionErrors:
    """Why a position command was refused: ``code`` is the first error's
    (OCO_PRICES_ILLOGICAL, RISK_LIMIT_REACHED, ORDER_REJECTED, NO_MARKET_PRICE, ...)."""

    code: str
    message: str
    errors: list[FieldError]


@strawberry.input
class OpenPositionInput:
    pair: str
    exchange_account_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "default: your paper account"))
    quote_amount: Decimal | None = strawberry.field(default=None, description=(
        "quote to spend (or give amount)"))
    amount: Decimal | None = strawberry.field(default=None, description="units to buy")
    limit_price: Decimal | None = strawberry.field(default=None, description=(
        "a limit buy at this price; default: a market buy"))
    trail_percent: Decimal | None = strawberry.field(default=None, description=(
        "a trailing buy stop instead: it follows the lowest price and buys on a rise of "
        "this percentage (or of trailAmount)"))
    trail_amount: Decimal | None = None
    activation_price: Decimal | None = strawberry.field(default=None, description=(
        "a trailing entry starts following once the price falls to this"))


@strawberry.input
class AdoptPositionInput:
    pair: str
    amount: Decimal
    exchange_account_id: strawberry.ID | None = None
    entry_price: Decimal | None = strawberry.field(default=None, description=(
        "what the units cost; default: the current price"))


@strawberry.input
class PlaceOcoInput:
    position_id: strawberry.ID
    take_profit_price: Decimal
    stop_price: Decimal
    stop_limit_price: Decimal | None = strawberry.field(default=None, description=(
        "the stop sells with a limit at this price; default: at market"))
    amount: Decimal | None = strawberry.field(default=None, description=(
        "units; default: all that no other exit sells"))


@strawberry.input
class PlaceTrailingStopInput:
    position_id: strawberry.ID
    side: Side = Side("sell")
    trail_percent: Decimal | None = None
    trail_amount: Decimal | None = strawberry.field(default=None, description=(
        "a price distance instead of a percentage"))
    activation_price: Decimal | None = None
    amount: Decimal | None = strawberry.field(default=None, description=(
        "units; a sell's default: all that no other exit sells; needed for a buy"))


PositionResult = Annotated[Position | PositionErrors, strawberry.union("PositionResult")]
PositionExitResult = Annotated[PositionExit | PositionErrors,
                               strawberry.union("PositionExitResult")]
