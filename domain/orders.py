"""The Order aggregate: an order's life on an exchange, as an explicit transition table."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.errors import DomainError, InvalidTransitionError, OverfillError
from domain.money import ZERO, to_decimal
from domain.recording import Cause, TradetapeAggregate, ValueEnum


class OrderSide(ValueEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(ValueEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderPurpose(ValueEnum):
    BASE = "base"
    SAFETY = "safety"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_STEP = "take_profit_step"  # one step of ``take_profit_steps``
    STOP_LOSS = "stop_loss"
    MANUAL = "manual"


class OrderStatus(ValueEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # the exchange does not know an order we submitted (reconciliation): never sent, or
    # lost on the way; its client id is never used again
    LOST = "lost"


S = OrderStatus
# Tuples, not sets: membership by identity, where a set would call Enum's Python-level
# __hash__ (twice for every order event).
_LIVE = (S.ACCEPTED, S.PARTIALLY_FILLED, S.CANCEL_REQUESTED)
# Which command each status allows; a fill may race an acknowledgement or a cancel.
TRANSITIONS: dict[str, tuple[OrderStatus, ...]] = {
    "accept": (S.SUBMITTED,),
    "reject": (S.SUBMITTED,),
    "fill": (S.SUBMITTED, *_LIVE),
    "request_cancel": (S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED),
    "cancel": (S.SUBMITTED, *_LIVE),
    "expire": (S.SUBMITTED, *_LIVE),
    "lose": (S.SUBMITTED, *_LIVE),
}
TERMINAL = (S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED, S.LOST)


class Order(TradetapeAggregate):
    client_order_id: str
    exchange_order_id: str | None
    bot_id: UUID | None
    deal_id: UUID | None
    owner_id: str
    exchange_account_id: str
    pair: str
    side: OrderSide
    type: OrderType
    purpose: OrderPurpose
    safety_order: int
    price: Decimal | None
    amount: Decimal
    status: OrderStatus
    filled: Decimal
    cost: Decimal
    fees: Decimal
    trade_ids: list[str]
    reason: str | None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Submitted(TradetapeAggregate.Created, Event):
        client_order_id: str
        bot_id: UUID | None
        deal_id: UUID | None
        owner_id: str
        exchange_account_id: str
        pair: str
        side: OrderSide
        type: OrderType
        purpose: OrderPurpose
        safety_order: int
        price: Decimal | None
        amount: Decimal

        def apply(self, order: Order) -> None:
            order.__dict__.update(
                client_order_id=self.client_order_id, bot_id=self.bot_id,
                deal_id=self.deal_id, owner_id=self.owner_id,
                exchange_account_id=self.exchange_account_id, pair=self.pair,
                side=self.side, type=self.type, purpose=self.purpose,
                safety_order=self.safety_order, price=self.price, amount=self.amount,
                status=S.SUBMITTED, exchange_order_id=None, reason=None, filled=ZERO,
                cost=ZERO, fees=ZERO, trade_ids=[])

    class Accepted(Event):
        exchange_order_id: str

        def apply(self, order: Order) -> None:
            order.status, order.exchange_order_id = S.ACCEPTED, self.exchange_order_id

    class Filled(Event):
        """One trade against the order; the order is filled when the trades add up."""

        trade_id: str
        price: Decimal
        amount: Decimal
        fee: Decimal
        fee_currency: str

        def apply(self, order: Order) -> None:
            _count_trade(order, self.trade_id, self.price, self.amount, self.fee)

    # What an exchange said, recorded apart from what we asked for (``Submitted``): live
    # venues report through these; the paper venue's answers stay Accepted and Filled.
    class ObservedOpen(Event):
        """The exchange reported the order open under ``exchange_order_id``."""

        exchange_order_id: str

        def apply(self, order: Order) -> None:
            order.status, order.exchange_order_id = S.ACCEPTED, self.exchange_order_id

    class TradeObserved(Event):
        """One trade the exchange reported against the order, at the exchange's time
        (UTC ms), with the fee as charged (``fee`` in ``fee_currency``) and, when that is not
        the quote asset, its value in quote and the rate used (``fee_quote``)."""

        trade_id: str
        price: Decimal
        amount: Decimal
        fee: Decimal
        fee_currency: str
        fee_quote: Decimal
        exchange_time_ms: int | None

        def apply(self, order: Order) -> None:
            _count_trade(order, self.trade_id, self.price, self.amount, self.fee_quote)

    class Lost(Event):
        """The exchange does not know the order (found by reconciliation)."""

        reason: str

        def apply(self, order: Order) -> None:
            order.status, order.reason = S.LOST, self.reason

    class CancelRequested(Event):
        def apply(self, order: Order) -> None:
            order.status = S.CANCEL_REQUESTED

    class Cancelled(Event):
        reason: str

        def apply(self, order: Order) -> None:
            order.status, order.reason = S.CANCELLED, self.reason

    class Rejected(Event):
        reason: str

        def apply(self, order: Order) -> None:
            order.status, order.reason = S.REJECTED, self.reason

    class Expired(Event):
        def apply(self, order: Order) -> None:
            order.status = S.EXPIRED

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def average_price(self) -> Decimal | None:
        return self.cost / self.filled if self.filled > ZERO else None

    @classmethod
    def submit(
        cls,
        order_id: UUID,
        cause: Cause,
        *,
        client_order_id: str,
        owner_id: str,
        exchange_account_id: str,
        pair: str,
        side: OrderSide,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        purpose: OrderPurpose = OrderPurpose.MANUAL,
        safety_order: int = 0,
        bot_id: UUID | None = None,
        deal_id: UUID | None = None,
    ) -> Order:
        amount = to_decimal(amount, "amount")
        if amount <= ZERO:
            raise DomainError("must be > 0", code="NOT_POSITIVE", field="amount")
        if price is not None:
            price = to_decimal(price, "price")
            if price <= ZERO:
                raise DomainError("must be > 0", code="NOT_POSITIVE", field="price")
        elif OrderType(type) is not OrderType.MARKET:
            raise DomainError(f"a {type} order needs a price", code="PRICE_REQUIRED", field="price")
        return cls._start(
            cls.Submitted,
            order_id,
            cause,
            client_order_id=client_order_id,
            bot_id=bot_id,
            deal_id=deal_id,
            owner_id=owner_id,
            exchange_account_id=exchange_account_id,
            pair=pair,
            # members as they are (the engine's case), else looked up by value
            side=side if side.__class__ is OrderSide else OrderSide(side),
            type=type if type.__class__ is OrderType else OrderType(type),
            purpose=purpose if purpose.__class__ is OrderPurpose else OrderPurpose(purpose),
            safety_order=safety_order,
            price=price,
            amount=amount,
        )

    def _check(self, action: str) -> None:
        if self.status not in TRANSITIONS[action]:
            raise InvalidTransitionError(
                f"cannot {action.replace('_', ' ')} an order that is {self.status}",
                code=f"ORDER_{str(self.status).upper()}",
            )

    def accept(self, cause: Cause, exchange_order_id: str, *, observed: bool = False) -> None:
        """``observed``: a live exchange's report (``ObservedOpen``), not the paper venue's."""
        self._check("accept")
        self._record(self.ObservedOpen if observed else self.Accepted, cause,
                     exchange_order_id=exchange_order_id)

    def lose(self, cause: Cause, reason: str) -> None:
        self._check("lose")
        self._record(self.Lost, cause, reason=reason)

    def observe_trade(self, cause: Cause, *, trade_id: str, price: Decimal, amount: Decimal,
                      fee: Decimal, fee_currency: str, fee_quote: Decimal,
                      exchange_time_ms: int | None) -> bool:
        """Record one trade a live exchange reported (see :meth:`fill`)."""
        if trade_id in self.trade_ids:
            return False
        self._check("fill")
        price, amount = to_decimal(price, "price"), to_decimal(amount, "amount")
        fee, fee_quote = to_decimal(fee, "fee"), to_decimal(fee_quote, "fee_quote")
        if price <= ZERO or amount <= ZERO or fee < ZERO or fee_quote < ZERO:
            raise DomainError("price and amount must be > 0, fee >= 0", code="INVALID_FILL")
        if self.filled + amount > self.amount:
            raise OverfillError(
                f"a fill of {amount} would take the order to {self.filled + amount}, "
                f"over its amount {self.amount}"
            )
        self._record(self.TradeObserved, cause, trade_id=trade_id, price=price, amount=amount,
                     fee=fee, fee_currency=fee_currency, fee_quote=fee_quote,
                     exchange_time_ms=exchange_time_ms)
        return True

    def reject(self, cause: Cause, reason: str) -> None:
        self._check("reject")
        self._record(self.Rejected, cause, reason=reason)

    def fill(
        self,
        cause: Cause,
        *,
        trade_id: str,
        price: Decimal,
        amount: Decimal,
        fee: Decimal,
        fee_currency: str,
    ) -> bool:
        """Record one trade. A trade id seen before is ignored (returns False): fills arrive
        again after reconnects, and must not count twice."""
        if trade_id in self.trade_ids:
            return False
        self._check("fill")
        price, amount = to_decimal(price, "price"), to_decimal(amount, "amount")
        fee = to_decimal(fee, "fee")
        if price <= ZERO or amount <= ZERO or fee < ZERO:
            raise DomainError("price and amount must be > 0, fee >= 0", code="INVALID_FILL")
        if self.filled + amount > self.amount:
            raise OverfillError(
                f"a fill of {amount} would take the order to {self.filled + amount}, "
                f"over its amount {self.amount}"
            )
        self._record(
            self.Filled,
            cause,
            trade_id=trade_id,
            price=price,
            amount=amount,
            fee=fee,
            fee_currency=fee_currency,
        )
        return True

    def request_cancel(self, cause: Cause) -> None:
        self._check("request_cancel")
        self._record(self.CancelRequested, cause)

    def cancel(self, cause: Cause, reason: str) -> None:
        self._check("cancel")
        self._record(self.Cancelled, cause, reason=reason)

    def expire(self, cause: Cause) -> None:
        self._check("expire")
        self._record(self.Expired, cause)


def _count_trade(order: Order, trade_id: str, price: Decimal, amount: Decimal,
                 fee_in_quote: Decimal) -> None:
    """A trade added to ``order``'s tallies: what ``Filled`` (the paper venue's fee) and
    ``TradeObserved`` (the exchange's fee, valued in quote) both do."""
    order.filled += amount
    order.cost += price * amount
    order.fees += fee_in_quote
    order.trade_ids.append(trade_id)
    order.status = S.FILLED if order.filled == order.amount else S.PARTIALLY_FILLED
