"""The Deal aggregate: one DCA position from its base order to its exit.

Its numbers (units, cost, fees, average entry, targets, P/L) come only from its events.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.errors import DomainError, InvalidTransitionError
from domain.money import HUNDRED, ONE, ZERO, to_decimal
from domain.recording import Cause, TradetapeAggregate, ValueEnum
from domain.text import REASON_MAX, checked_text


class DealStatus(ValueEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class CloseReason(ValueEnum):
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    # a take profit too: sold when the price fell back from its highest after the take
    # profit price was reached (``trailing_take_profit_pct``)
    TRAILING_TAKE_PROFIT = "trailing_take_profit"
    # the last of the ``take_profit_steps`` sold what was left
    TAKE_PROFIT_STEP = "take_profit_step"
    # a stop too: the trailing level (``trailing_stop_loss``) was the one resting
    TRAILING_STOP_LOSS = "trailing_stop_loss"
    MANUAL = "manual"
    EMERGENCY = "emergency"  # recorded before emergency exits had their own reason
    EMERGENCY_EXIT = "emergency_exit"  # sold by a user's or the system's emergency exit
    SIGNAL = "signal"  # sold on a webhook's close_deal (or sell) signal


class Deal(TradetapeAggregate):
    bot_id: UUID
    owner_id: str
    exchange_account_id: str
    pair: str
    take_profit_pct: Decimal
    stop_loss_pct: Decimal | None
    status: DealStatus
    units: Decimal
    units_bought: Decimal
    cost: Decimal
    buy_fees: Decimal
    sell_fees: Decimal
    proceeds: Decimal
    safety_orders_used: int
    entry_price: Decimal | None  # what the base order's fills cost per unit
    base_cost: Decimal
    base_units: Decimal
    base_order_id: UUID | None  # the base order, once part of it filled (its BuyFilled)
    take_profit_price: Decimal | None
    stop_loss_price: Decimal | None
    close_reason: CloseReason | None
    exit_price: Decimal | None
    realized_pnl: Decimal | None
    trailing_highest: Decimal | None  # the price trailing started at; None: not trailing
    steps_sold: int  # take profit steps sold so far (the closing one not counted)
    step_units: Decimal  # units held when the first step sold
    step_average: Decimal | None  # the average the step prices froze at
    sells: list[tuple[Decimal, Decimal, Decimal]]  # (price, amount, fee) of each step sold
    exit_amount: Decimal | None  # what the closing sell sold, and its fee
    exit_fee: Decimal | None
    stop_trailing_from: Decimal | None  # trailing stop: the activating price
    trailing_stop_hit: bool  # the trailing stop's level sold (StopTrailingTriggered)
    opened_at: datetime
    closed_at: datetime | None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Opened(TradetapeAggregate.Created, Event):
        bot_id: UUID
        owner_id: str
        exchange_account_id: str
        pair: str
        take_profit_pct: Decimal
        stop_loss_pct: Decimal | None

        def apply(self, deal: Deal) -> None:
            deal.bot_id, deal.owner_id, deal.pair = self.bot_id, self.owner_id, self.pair
            deal.exchange_account_id = self.exchange_account_id
            deal.take_profit_pct, deal.stop_loss_pct = self.take_profit_pct, self.stop_loss_pct
            deal.status, deal.opened_at, deal.closed_at = DealStatus.OPEN, self.timestamp, None
            deal.units = deal.units_bought = deal.cost = ZERO
            deal.buy_fees = deal.sell_fees = deal.proceeds = ZERO
            deal.safety_orders_used = 0
            deal.take_profit_price = deal.stop_loss_price = deal.exit_price = None
            deal.entry_price, deal.base_cost, deal.base_units = None, ZERO, ZERO
            deal.base_order_id = None
            deal.close_reason = deal.realized_pnl = None
            deal.trailing_highest = deal.step_average = deal.stop_trailing_from = None
            deal.steps_sold, deal.step_units, deal.sells = 0, ZERO, []
            deal.exit_amount = deal.exit_fee = None
            deal.trailing_stop_hit = False

    class BuyFilled(Event):
        order_id: UUID
        safety_order: int
        price: Decimal
        amount: Decimal
        fee: Decimal

        def apply(self, deal: Deal) -> None:
            deal.units += self.amount
            deal.units_bought += self.amount
            deal.cost += self.price * self.amount
            deal.buy_fees += self.fee
            deal.safety_orders_used = max(deal.safety_orders_used, self.safety_order)
            if self.safety_order == 0:  # the base order, maybe filled in parts
                first_part = deal.entry_price is None
                deal.base_order_id = self.order_id
                deal.base_cost += self.price * self.amount
                deal.base_units += self.amount
                # one fill: its price exactly, not price × amount / amount rounded
                deal.entry_price = self.price if first_part else (
                    deal.base_cost / deal.base_units)

    class TargetsMoved(Event):
        take_profit_price: Decimal
        stop_loss_price: Decimal | None

        def apply(self, deal: Deal) -> None:
            deal.take_profit_price, deal.stop_loss_price = (
                self.take_profit_price,
                self.stop_loss_price,
            )

    class TrailingStarted(Event):
        """The price reached the take profit price (``price``: the take profit price on a
        rising leg, or a candle's open at or above it): nothing was sold, the deal trails.
        It sells when the price falls to highest × (1 − ``trailing_pct``/100), the highest
        being the highest price reached since (a rising leg counts up to its end, so the
        leg that reached the take profit raises it at once); ``level`` is that price from
        ``price``. The rises are not recorded one by one (they come from the market data):
        ``TrailingTriggered`` says which highest and level sold the deal."""

        price: Decimal
        trailing_pct: Decimal
        level: Decimal

        def apply(self, deal: Deal) -> None:
            deal.trailing_highest = self.price

    class TrailingTriggered(Event):
        """The price fell to the trailing level (or opened below it): the highest reached
        since trailing started and the level it gave; the exit follows (``Closed``, reason
        ``trailing_take_profit``, at ``level`` or at the open below it)."""

        highest: Decimal
        level: Decimal

    class StepSold(Event):
        """Take profit step ``step`` (1 = the first) sold ``amount`` at ``price``: its share of
        the units held when the first step sold. The deal stays open for the next step (the
        last one closes it: ``Closed``, reason ``take_profit_step``). ``average``: the
        average the step prices are worked out from, frozen at the first step."""

        step: int
        order_id: UUID
        price: Decimal
        amount: Decimal
        fee: Decimal
        average: Decimal

        def apply(self, deal: Deal) -> None:
            if self.step == 1:
                deal.step_units, deal.step_average = deal.units, self.average
            deal.steps_sold = self.step
            deal.units -= self.amount
            deal.proceeds += self.price * self.amount
            deal.sell_fees += self.fee
            deal.sells.append((self.price, self.amount, self.fee))

    class StopTrailingStarted(Event):
        """A trailing stop with an activation: a price at or above avg × (1 + activation/100)
        was reached (``price``); the stop trails from it, at ``level``."""

        price: Decimal
        level: Decimal

        def apply(self, deal: Deal) -> None:
            deal.stop_trailing_from = self.price

    class StopTrailingTriggered(Event):
        """The price fell to the trailing stop: the highest reached since it started
        trailing and the level it gave; the exit follows (reason ``trailing_stop_loss``)."""

        highest: Decimal
        level: Decimal

        def apply(self, deal: Deal) -> None:
            deal.trailing_stop_hit = True

    class Closed(Event):
        reason: CloseReason
        order_id: UUID
        price: Decimal
        amount: Decimal
        fee: Decimal
        realized_pnl: Decimal

        def apply(self, deal: Deal) -> None:
            deal.status, deal.close_reason, deal.closed_at = (
                DealStatus.CLOSED,
                self.reason,
                self.timestamp,
            )
            deal.exit_price, deal.sell_fees = self.price, deal.sell_fees + self.fee
            deal.proceeds += self.price * self.amount
            deal.exit_amount, deal.exit_fee = self.amount, self.fee
            # The exit sells everything: say so exactly, not as a 0E-31 remainder.
            deal.units = ZERO
            deal.realized_pnl = self.realized_pnl

    class DustLeft(Event):
        """The exit sold less than the deal held: an exchange sells in whole steps of its
        amount precision, and what is below one step (``amount``) stays on the account,
        outside the deal. Recorded just before ``Closed``."""

        amount: Decimal

    class OrderRejected(Event):
        """A live exchange refused one of this deal's orders (e.g. a safety order below its
        minimum order value): the deal goes on without it."""

        order_id: UUID
        purpose: str
        safety_order: int
        reason: str

    class RiskLimitReached(Event):
        """Safety order ``safety_order`` (and those after it) was not placed: it would have
        passed the owner's risk ``limit`` (``message``: the figures)."""

        safety_order: int
        limit: str
        message: str

    class OrderLost(Event):
        """An order of this deal is unknown to the exchange (found by reconciliation)."""

        order_id: UUID
        purpose: str

    class Cancelled(Event):
        reason: str

        def apply(self, deal: Deal) -> None:
            deal.status, deal.closed_at = DealStatus.CANCELLED, self.timestamp

    class FeesCorrected(Event):
        """A correction of the fees some of this deal's fills paid (a fee rule applied
        wrongly, a rebate granted later). The fills stay as recorded, so the history still
        shows what was believed then; from this event on the deal's fees, and a closed
        deal's realized P/L, include the change. It carries the totals it leads to, so a
        read model can follow it without reading the deal's earlier rows, and where the
        money moves (owner, account, currency)."""

        buy_fee_change: Decimal
        sell_fee_change: Decimal
        buy_fees: Decimal
        sell_fees: Decimal
        realized_pnl: Decimal | None
        fills: int
        fill_fees: dict[str, Decimal]  # each corrected fill's fee now, by its event's version
        fee_currency: str
        bot_id: UUID
        exchange_account_id: str
        owner_id: str
        rule: str
        reason: str

        def apply(self, deal: Deal) -> None:
            deal.buy_fees, deal.sell_fees = self.buy_fees, self.sell_fees
            deal.realized_pnl = self.realized_pnl

    # --- reading --------------------------------------------------------------------------

    @property
    def average_entry(self) -> Decimal | None:
        """Quote spent on buys (fees excluded) per unit bought; kept after the exit."""
        return self.cost / self.units_bought if self.units_bought > ZERO else None

    @property
    def fees(self) -> Decimal:
        return self.buy_fees + self.sell_fees

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        """Value at ``mark_price`` minus cost minus the buy fees already paid."""
        if self.status is not DealStatus.OPEN:
            return ZERO
        value = self.units * mark_price - self.cost - self.buy_fees
        return value + self.proceeds - self.sell_fees if self.steps_sold else value

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        deal_id: UUID,
        cause: Cause,
        *,
        bot_id: UUID,
        owner_id: str,
        exchange_account_id: str,
        pair: str,
        take_profit_pct: Decimal,
        stop_loss_pct: Decimal | None,
    ) -> Deal:
        return cls._start(
            cls.Opened,
            deal_id,
            cause,
            bot_id=bot_id,
            owner_id=owner_id,
            exchange_account_id=exchange_account_id,
            pair=pair,
            take_profit_pct=to_decimal(take_profit_pct, "take_profit_pct"),
            stop_loss_pct=(
                None if stop_loss_pct is None else to_decimal(stop_loss_pct, "stop_loss_pct")
            ),
        )

    def _require_open(self) -> None:
        if self.status is not DealStatus.OPEN:
            raise InvalidTransitionError(f"the deal is {self.status}", code="DEAL_NOT_OPEN")

    def record_buy(
        self,
        cause: Cause,
        *,
        order_id: UUID,
        safety_order: int,
        price: Decimal,
        amount: Decimal,
        fee: Decimal,
    ) -> None:
        """A buy filled: add it to the position and move the targets from the new average."""
        self._require_open()
        price, amount, fee = _checked_fill(price, amount, fee)
        self._record(
            self.BuyFilled,
            cause,
            order_id=order_id,
            safety_order=safety_order,
            price=price,
            amount=amount,
            fee=fee,
        )
        average = self.cost / self.units_bought
        stop = None
        if self.stop_loss_pct is not None:
            stop = average * (ONE - self.stop_loss_pct / HUNDRED)
        self._record(
            self.TargetsMoved,
            cause,
            take_profit_price=average * (ONE + self.take_profit_pct / HUNDRED),
            stop_loss_price=stop,
        )

    def start_trailing(self, cause: Cause, *, price: Decimal, trailing_pct: Decimal,
                       level: Decimal) -> None:
        self._require_open()
        self._record(self.TrailingStarted, cause, price=price, trailing_pct=trailing_pct,
                     level=level)

    def trailing_triggered(self, cause: Cause, *, highest: Decimal, level: Decimal) -> None:
        self._require_open()
        self._record(self.TrailingTriggered, cause, highest=highest, level=level)

    def sell_step(self, cause: Cause, *, step: int, order_id: UUID, price: Decimal,
                  amount: Decimal, fee: Decimal, average: Decimal) -> None:
        """A take profit step sold part of the position (not the last: that one closes)."""
        self._require_open()
        price, amount, fee = _checked_fill(price, amount, fee)
        if amount >= self.units:
            raise DomainError(f"a step sells part of the position ({self.units}), not "
                              f"{amount}: the last step closes the deal", code="PARTIAL_EXIT")
        self._record(self.StepSold, cause, step=step, order_id=order_id, price=price,
                     amount=amount, fee=fee, average=average)

    def move_targets(self, cause: Cause, *, take_profit_price: Decimal,
                     stop_loss_price: Decimal | None) -> None:
        self._require_open()
        self._record(self.TargetsMoved, cause, take_profit_price=take_profit_price,
                     stop_loss_price=stop_loss_price)

    def start_stop_trailing(self, cause: Cause, *, price: Decimal, level: Decimal) -> None:
        self._require_open()
        self._record(self.StopTrailingStarted, cause, price=price, level=level)

    def stop_trailing_triggered(self, cause: Cause, *, highest: Decimal,
                                level: Decimal) -> None:
        self._require_open()
        self._record(self.StopTrailingTriggered, cause, highest=highest, level=level)

    def close(
        self,
        cause: Cause,
        *,
        reason: CloseReason,
        order_id: UUID,
        price: Decimal,
        amount: Decimal,
        fee: Decimal,
        dust_ok: bool = False,
    ) -> None:
        """The exit sold the whole position; realized P/L = proceeds − cost − all fees.

        ``dust_ok``: a live exchange's exit may sell less than held (its amount precision);
        the rest is recorded as dust (``DustLeft``) and the deal closes all the same."""
        self._require_open()
        price, amount, fee = _checked_fill(price, amount, fee)
        if dust_ok and amount < self.units:
            self._record(self.DustLeft, cause, amount=self.units - amount)
        elif amount != self.units:
            raise DomainError(
                f"the exit must sell the whole position ({self.units}), not {amount}",
                code="PARTIAL_EXIT",
            )
        pnl = price * amount - self.cost - self.buy_fees - fee
        if self.steps_sold:  # the steps' sells count too
            pnl = (self.proceeds + price * amount - self.cost - self.buy_fees
                   - self.sell_fees - fee)
        self._record(
            self.Closed,
            cause,
            reason=CloseReason(reason),
            order_id=order_id,
            price=price,
            amount=amount,
            fee=fee,
            realized_pnl=pnl,
        )

    def correct_fees(
        self,
        cause: Cause,
        *,
        buy_fee_change: Decimal,
        sell_fee_change: Decimal,
        fill_fees: dict[str, Decimal],
        fee_currency: str,
        rule: str,
        reason: str,
    ) -> None:
        """Record a correction of the fees of some of this deal's fills: the buys' fees
        change by ``buy_fee_change``, the exit's by ``sell_fee_change`` (quote);
        ``fill_fees``: the fee each corrected fill now counts, by the version of its event
        in this deal (so a later correction starts from it)."""
        buy_change = to_decimal(buy_fee_change, "buy_fee_change")
        sell_change = to_decimal(sell_fee_change, "sell_fee_change")
        reason = _reason(reason)
        if not buy_change and not sell_change:
            raise DomainError("the corrected fees are the fees recorded",
                              code="NOTHING_TO_CORRECT")
        if sell_change and self.status is not DealStatus.CLOSED:
            raise DomainError("only a closed deal has an exit fee to correct",
                              code="INVALID_CORRECTION")
        buy_fees, sell_fees = self.buy_fees + buy_change, self.sell_fees + sell_change
        if buy_fees < ZERO or sell_fees < ZERO:
            raise DomainError("a correction cannot make fees negative",
                              code="INVALID_CORRECTION")
        pnl = (None if self.realized_pnl is None
               else self.realized_pnl - buy_change - sell_change)
        self._record(
            self.FeesCorrected, cause, buy_fee_change=buy_change,
            sell_fee_change=sell_change, buy_fees=buy_fees, sell_fees=sell_fees,
            realized_pnl=pnl, fills=len(fill_fees), fill_fees=dict(fill_fees),
            fee_currency=fee_currency,
            bot_id=self.bot_id, exchange_account_id=self.exchange_account_id,
            owner_id=self.owner_id, rule=rule,
            reason=reason,
        )

    def order_rejected(self, cause: Cause, *, order_id: UUID, purpose: str, safety_order: int,
                       reason: str) -> None:
        self._require_open()
        self._record(self.OrderRejected, cause, order_id=order_id, purpose=purpose,
                     safety_order=safety_order, reason=_reason(reason))

    def refuse_safety_order(self, cause: Cause, safety_order: int, limit: str,
                            message: str) -> None:
        self._require_open()
        self._record(self.RiskLimitReached, cause, safety_order=safety_order, limit=limit,
                     message=_reason(message))

    def order_lost(self, cause: Cause, *, order_id: UUID, purpose: str) -> None:
        self._require_open()
        self._record(self.OrderLost, cause, order_id=order_id, purpose=purpose)

    def cancel(self, cause: Cause, reason: str) -> None:
        """Give up a deal that never bought anything (its base order was rejected)."""
        self._require_open()
        if self.units > ZERO:
            raise InvalidTransitionError(
                "a deal that holds units is closed, not cancelled", code="DEAL_HOLDS_UNITS"
            )
        self._record(self.Cancelled, cause, reason=reason)


def _reason(text: object) -> str:
    reason = checked_text(text, "reason", max_chars=REASON_MAX).strip() if isinstance(
        text, str) else ""
    if not reason:
        raise DomainError("say why: a correction needs a reason", code="REASON_REQUIRED",
                          field="reason")
    return reason


def _checked_fill(price: object, amount: object, fee: object) -> tuple[Decimal, Decimal, Decimal]:
    price, amount = to_decimal(price, "price"), to_decimal(amount, "amount")
    fee = to_decimal(fee, "fee")
    if price <= ZERO or amount <= ZERO or fee < ZERO:
        raise DomainError("price and amount must be > 0, fee >= 0", code="INVALID_FILL")
    return price, amount, fee
