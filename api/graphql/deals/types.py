"""Deals, their orders and fills, as the deal list and P/L views hold them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from api.graphql.common import Counted, Errors, PageInfo, when
from api.graphql.deals.enums import (
    CloseReason,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    member,
)
from api.graphql.display import base_of, display, market_display, quote_of
from api.graphql.remarking import marked_field
from projections.ledger import unrealized
from projections.tables import Row

if TYPE_CHECKING:
    from api.graphql.bots.types import Bot


@strawberry.enum
class DealStatus(Enum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


@strawberry.type
class Fill:
    order_id: strawberry.ID
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    safety_order: int | None
    at: datetime


@strawberry.type(description="A sell of a deal: a take profit step, or the exit that closed it")
class DealSell:
    order_id: strawberry.ID
    price: Decimal
    amount: Decimal
    fee: Decimal
    at: datetime
    step: int | None = strawberry.field(description=(
        "The take profit step that sold (1 = the first; the last step's sell closes the "
        "deal); null for an exit that was not a step"))


@strawberry.type
class Order:
    id: strawberry.ID
    client_order_id: str
    exchange_order_id: str | None
    side: OrderSide
    type: OrderType
    purpose: OrderPurpose
    safety_order: int
    price: Decimal | None
    amount: Decimal
    filled: Decimal
    cost: Decimal
    average_price: Decimal | None
    fees: Decimal
    status: OrderStatus
    reason: str | None
    created_at: datetime
    updated_at: datetime
    bot_id: strawberry.ID | None = None
    deal_id: strawberry.ID | None = None
    pair: str | None = None
    price_display: str | None = market_display("price", "price_step",
                                               lambda o: quote_of(o.pair))
    average_price_display: str | None = market_display("average_price", "price_step",
                                                       lambda o: quote_of(o.pair))
    amount_display: str | None = market_display("amount", "amount_step",
                                                lambda o: base_of(o.pair))

    @classmethod
    def from_row(cls, row: Row) -> Order:
        return cls(id=strawberry.ID(row["order_id"]), client_order_id=row["client_order_id"],
                   exchange_order_id=row["exchange_order_id"],
                   side=member(OrderSide, row["side"]), type=member(OrderType, row["type"]),
                   purpose=member(OrderPurpose, row["purpose"]),
                   safety_order=row["safety_order"],
                   price=row["price"], amount=row["amount"], filled=row["filled"],
                   cost=row["cost"], average_price=row["average_price"], fees=row["fees"],
                   status=member(OrderStatus, row["status"]), reason=row["reason"],
                   created_at=when(row["created_at"]), updated_at=when(row["updated_at"]),
                   bot_id=_id(row.get("bot_id")), deal_id=_id(row.get("deal_id")),
                   pair=row.get("pair"))


def _id(text: str | None) -> strawberry.ID | None:
    return None if text is None else strawberry.ID(text)


@strawberry.type
class Deal:
    id: strawberry.ID
    bot_id: strawberry.ID
    pair: str
    status: DealStatus
    opened_at: datetime
    closed_at: datetime | None
    close_reason: CloseReason | None
    units: Decimal
    units_bought: Decimal
    cost: Decimal
    average_entry: Decimal | None
    take_profit_price: Decimal | None
    stop_loss_price: Decimal | None
    safety_orders_used: int
    realized_pnl: Decimal | None
    units_display: str | None = market_display("units", "amount_step",
                                               lambda d: base_of(d.pair))
    average_entry_display: str | None = market_display("average_entry", "price_step",
                                                       lambda d: quote_of(d.pair))
    take_profit_price_display: str | None = market_display("take_profit_price", "price_step",
                                                           lambda d: quote_of(d.pair))
    realized_pnl_display: str | None = display("realized_pnl", lambda d: quote_of(d.pair))

    @strawberry.field(description="What the base order's fills cost per unit: the price the "
                      "deal was entered at (averageEntry moves with every safety order)")
    async def entry_price(self, info: Info) -> Decimal | None:
        rows = await info.context.loaders.orders.load(str(self.id))
        base = next((row for row in rows if row["purpose"] == "base"), None)
        return None if base is None else base["average_price"]

    @strawberry.field(description="Buy and sell fees paid so far")
    async def fees(self, info: Info) -> Decimal | None:
        row = await info.context.loaders.deal_pnl.load(str(self.id))
        return None if row is None else row["fees"]

    @strawberry.field(description=(
        "What an open deal is marked at: the pair's last price on the server's market (its "
        "last fill before the market's first candle); a closed deal's exit price"))
    async def mark_price(self, info: Info) -> Decimal | None:
        row = await info.context.loaders.deal_pnl.load(str(self.id))
        if row is None:
            return None
        runtime = info.context.runtime
        if row["status"] == "open":  # a cached answer is marked again at the next price
            return marked_field(info, lambda: market_mark(runtime, row), _as_scalar)
        return market_mark(runtime, row)

    @strawberry.field(description="units × markPrice − cost − buy fees, for an open deal")
    async def unrealized_pnl(self, info: Info) -> Decimal | None:
        row = await info.context.loaders.deal_pnl.load(str(self.id))
        if row is None or row["status"] != "open":
            return None if row is None else row["unrealized_pnl"]
        runtime = info.context.runtime  # marked again at the next price, as markPrice is
        return marked_field(info, lambda: open_unrealized(runtime, row), _as_scalar)

    @strawberry.field
    async def orders(self, info: Info) -> list[Order]:
        rows = await info.context.loaders.orders.load(str(self.id))
        return [Order.from_row(r) for r in rows]

    @strawberry.field(description="Each buy and the exit, in order (from the deal's events)")
    async def fills(self, info: Info) -> list[Fill]:
        rows: list[dict[str, Any]] = await info.context.loaders.fills.load(str(self.id))
        return [Fill(**{**r, "order_id": strawberry.ID(r["order_id"])}) for r in rows]

    @strawberry.field(description=(
        "Every sell in order: each take profit step that sold part of the deal, then the "
        "exit that closed it (fills lists the exit only)"))
    async def sells(self, info: Info) -> list[DealSell]:
        rows: list[dict[str, Any]] = await info.context.loaders.sells.load(str(self.id))
        return [DealSell(**{**r, "order_id": strawberry.ID(r["order_id"])}) for r in rows]

    @strawberry.field
    async def bot(self, info: Info) -> Annotated[
            Bot, strawberry.lazy("api.graphql.bots.types")] | None:
        from api.graphql.bots.types import Bot

        row = await info.context.loaders.bots.load(str(self.bot_id))
        return None if row is None else Bot.from_row(row)

    @classmethod
    def from_row(cls, row: Row) -> Deal:
        return cls(id=strawberry.ID(row["deal_id"]), bot_id=strawberry.ID(row["bot_id"]),
                   pair=row["pair"], status=DealStatus(row["status"]),
                   opened_at=when(row["opened_at"]), closed_at=when(row["closed_at"]),
                   close_reason=member(CloseReason, row["close_reason"]), units=row["units"],
                   units_bought=row["units_bought"], cost=row["cost"],
                   average_entry=row["average_entry"],
                   take_profit_price=row["take_profit_price"],
                   stop_loss_price=row["stop_loss_price"],
                   safety_orders_used=row["safety_orders_used"],
                   realized_pnl=row["realized_pnl"])


@strawberry.type
class DealEdge:
    node: Deal
    cursor: str


@strawberry.type
class DealConnection(Counted):
    edges: list[DealEdge]
    page_info: PageInfo


@strawberry.type
class OrderEdge:
    node: Order
    cursor: str


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo

    total_count: int = strawberry.field(description="orders matching the filters, all pages")


@strawberry.type
class DealErrors(Errors):
    """A refused command's errors."""

DealResult = Annotated[Deal | DealErrors, strawberry.union("DealResult")]


def market_mark(runtime: Any, row: dict) -> Decimal | None:
    """An open deal's mark from the market (the projection's last fill until the market has
    a price); a finished deal keeps the price it ended at."""
    if row["status"] == "open":
        last = runtime.loop.tape
        last = last.last(row["pair"]) if last is not None else None
        if last is not None:
            return last.close
    return row["mark_price"]


def _as_scalar(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")  # as the Decimal scalar shows it


def open_unrealized(runtime: Any, row: dict) -> Decimal:
    """An open deal (a ``pnl_deals`` row) marked at the market's last price of its pair
    (``ledger.unrealized``: ``units × price − cost − buy fees``, plus what take profit steps
    sold); at the projection's mark (the pair's last fill) while the market has no price
    yet (the row as ``pnl_by_deal`` marked it)."""
    tape = getattr(runtime.loop, "tape", None) if runtime is not None else None
    last = tape.last(row["pair"]) if tape is not None else None
    if last is None:
        return row["unrealized_pnl"]
    return unrealized(row, last.close)
