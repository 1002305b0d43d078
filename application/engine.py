"""DcaEngine: runs one DCA bot against an exchange. The same code for backtest, paper and
live; only the exchange adapter and the market feed differ.

It turns what the exchange reports into Order and Deal events and decides what to do next:
open a deal at a candle's close, rest the safety orders, exit at take profit or stop loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from application.exits import DealExits
from application.safety_retries import SafetyRetries, retried
from domain.bots import Bot, BotStatus
from domain.dca import DcaConfig, safety_orders
from domain.deals import CloseReason, Deal, DealStatus
from domain.errors import InvalidTransitionError
from domain.money import ZERO
from domain.orders import Order, OrderPurpose, OrderSide, OrderStatus, OrderType
from domain.ports import Exchange, ExchangeOrder, IdSource, OrderRequest
from domain.recording import Cause, TradetapeAggregate
from domain.risk import RiskCheck, RiskLimitError

log = logging.getLogger("tradetape.engine")
_TAKING_PROFIT = frozenset({OrderPurpose.TAKE_PROFIT, OrderPurpose.TAKE_PROFIT_STEP})
_STOPS = frozenset({CloseReason.STOP_LOSS, CloseReason.TRAILING_STOP_LOSS})
_TAKE_PROFITS = frozenset({CloseReason.TAKE_PROFIT, CloseReason.TRAILING_TAKE_PROFIT,
                           CloseReason.TAKE_PROFIT_STEP})


@dataclass
class EngineTally:
    """Running figures a backtest summary needs without re-reading the log."""

    deals_closed: int = 0
    take_profits: int = 0  # closed by any take profit, the trailing one included
    trailing_take_profits: int = 0
    take_profit_steps_filled: int = 0  # every step sold, the open deal's too
    stop_losses: int = 0  # closed by any stop, the trailing one included
    trailing_stop_losses: int = 0
    wins: int = 0
    realized_pnl: Decimal = ZERO
    gross_profit: Decimal = ZERO  # P/L of the winning deals
    gross_loss: Decimal = ZERO  # of the losing ones, as a positive amount
    deal_seconds: int = 0  # how long the closed deals were open, in all
    longest_deal_seconds: int = 0
    fees_closed_deals: Decimal = ZERO
    max_safety_orders_used: int = 0
    orders_rejected: int = 0
    closed_deals: list[Deal] = field(default_factory=list)


class DcaEngine:
    def __init__(self, bot: Bot, exchange: Exchange, ids: IdSource, *, keep_deals: bool = False,
                 risk: RiskCheck | None = None):
        """``risk``: the owner's risk limits, asked before a deal's base order and each
        safety order is sent (None: no limits, as in a backtest)."""
        self.bot, self.exchange, self.ids = bot, exchange, ids
        self.risk = risk
        self.deal: Deal | None = None
        self.orders: dict[str, Order] = {}  # by client order id, open ones only
        self.tally = EngineTally()
        self.keep_deals = keep_deals
        self._cause: Cause | None = None
        self._base_fill_price: Decimal | None = None
        self.ready_at: datetime | None = None  # cooldown: no new deal before this
        self._manual_reason = CloseReason.MANUAL  # why a MANUAL sell closes the deal
        self._dirty: dict[int, TradetapeAggregate] = {}
        # A live venue sizes orders to the exchange's precision (amount rounded down, so a
        # sell never exceeds the holding); simulated venues have no such method.
        self._sized = getattr(exchange, "sized", None)
        # live: the base order's answer came later than its request; place the ladder then
        self._ladder_pending = False
        self._exit_order: Order | None = None  # live: an exit the exchange has not filled yet
        # The open deal's exits beyond one take profit and a fixed stop (application/exits)
        self._exits: DealExits | None = None
        self._plain: DcaConfig | None = None  # the bot's config, when its exits are plain
        self._not_plain: DcaConfig | None = None  # and when they are not
        self._opening = False  # the next price is a candle's open (stops before take profits)
        # live: the open deal's safety orders the exchange refused or lost, sent again
        self._retries: SafetyRetries | None = None

    def _is_plain(self) -> bool:
        """Whether the bot's configuration has only a fixed take profit and stop, noted by
        identity: the hot path then compares one pointer (the config may be edited)."""
        config = self.bot.config
        if config is self._not_plain:  # (asked at every price a bot with exits sees)
            return False
        if config.plain_exits:
            self._plain = config
            return True
        self._not_plain = config
        return False

    # --- steps ----------------------------------------------------------------------------

    def begin_step(self, cause: Cause) -> None:
        """Every event until the next step carries this cause (time, actor, correlation)."""
        self._cause = cause
        self._opening = True

    def take_changes(self) -> list[TradetapeAggregate]:
        """The aggregates changed since the last call, to be saved in one transaction."""
        if not self._dirty:  # (most bots of a market a candle walks changed nothing)
            return []
        changed, self._dirty = list(self._dirty.values()), {}
        return changed

    def closed_deals(self) -> list[Deal]:
        """The deals closed since the last ``take_changes`` (the step's)."""
        if not self._dirty:
            return []
        return [a for a in self._dirty.values()
                if isinstance(a, Deal) and a.status is DealStatus.CLOSED]

    def _touch(self, aggregate: TradetapeAggregate) -> None:
        # by the object, not its UUID (hashed in Python): each aggregate is one object here
        self._dirty[id(aggregate)] = aggregate

    @property
    def step_time(self) -> datetime | None:
        """The time of the step under way (or last taken); None before the first."""
        return None if self._cause is None else self._cause.at

    @property
    def cause(self) -> Cause:
        assert self._cause is not None, "begin_step() first"
        return self._cause

    @property
    def config(self) -> DcaConfig:
        return self.bot.config

    @property
    def wants_next_close(self) -> bool:
        """True when the next candle's close matters even if no level is crossed (a bot
        that waits for a signal opens no deal at a close)."""
        return (self.deal is None and self.bot.status is BotStatus.RUNNING
                and not self.bot.config.waits_for_signal)

    # --- PriceWatcher ---------------------------------------------------------------------

    def trigger_levels(self) -> tuple[Decimal | None, Decimal | None]:
        deal = self.deal
        if deal is None or deal.units == ZERO:
            return None, None
        config = self.bot.config
        if config is self._plain or (config is not self._not_plain and self._is_plain()):
            return deal.stop_loss_price, deal.take_profit_price  # (the hot path)
        return self._exits_of(deal).levels()

    def watch_levels(self) -> tuple[Decimal | None, Decimal | None, None, Decimal | None]:
        """``trigger_levels``, no ``low_watch`` and ``high_watch`` in one call: a walk asks
        them of every bot of a market at every price it stops at."""
        deal = self.deal
        if deal is None or deal.units == ZERO:
            return None, None, None, None
        config = self.bot.config
        if config is self._plain or (config is not self._not_plain and self._is_plain()):
            return deal.stop_loss_price, deal.take_profit_price, None, None  # (the hot path)
        exits = self._exits_of(deal)
        below, above = exits.levels()
        return below, above, None, exits.high_watch()

    def high_watch(self) -> Decimal | None:
        """While a level follows the highest price (trailing), the lowest price at which a
        rise moves one: the market shows this watcher the end of every rising leg, and a
        candle reaching above it cannot be skipped. None otherwise."""
        deal = self.deal
        if self.bot.config is self._plain or deal is None or deal.units == ZERO:
            return None
        return self._exits_of(deal).high_watch()

    def only_raises(self, low: Decimal, high: Decimal) -> bool:
        """The backtest's fast path: whether walking a candle ranging from ``low`` to
        ``high`` would only raise the open deal's trailing highests (no order, no event;
        the venue's resting orders are the caller's to check)."""
        deal = self.deal
        if (self.bot.config is self._plain or deal is None or deal.units == ZERO
                or self._exiting()):
            return False
        exits = self._exits_of(deal)
        return exits.follows_highs and exits.only_raises(low, high)

    def raise_highest(self, open_: Decimal, high: Decimal) -> None:
        """What walking a candle that :meth:`only_raises` does: the prices that can raise
        the highests are its open, then its high (a rising leg's end; the close is no
        higher), reached in that order."""
        exits = self._exits_of(self.deal)
        exits.raise_to(open_)
        exits.raise_to(high)

    def _exits_of(self, deal: Deal) -> DealExits:
        exits, config = self._exits, self.bot.config  # (asked at every price visited)
        if exits is None or exits.deal is not deal or (
                exits.config is not config and exits.config != config):
            # (a bot loaded again with the same configuration keeps what its trailing
            # levels followed since they were recorded: only an edit starts them over)
            exits = self._exits = DealExits(config, deal)
        return exits

    def on_price(self, price: Decimal) -> None:
        deal = self.deal
        opening, self._opening = self._opening, False
        if deal is None or deal.units == ZERO:
            return
        if self._retries is not None:  # (live only: a refused safety order)
            self._retry_safety(deal)
        exiting = self._exit_order
        if exiting is not None and exiting.is_open:  # live: one exit at a time
            if exiting.purpose not in _TAKING_PROFIT:
                return
            stop = (deal.stop_loss_price if self.bot.config.plain_exits
                    else self._exits_of(deal).stop()[0])
            if stop is None or price > stop:
                return
            # the market left the resting take profit and fell to the stop: the stop sells
            self._cancel(exiting)
            if exiting.is_open or self.deal is None:
                return  # the cancel went unanswered, or the take profit filled after all
        config = self.bot.config
        if config is self._not_plain or (config is not self._plain and not self._is_plain()):
            self._on_price_exits(deal, price, opening)
        elif deal.stop_loss_price is not None and price <= deal.stop_loss_price:
            self._exit(CloseReason.STOP_LOSS, OrderType.MARKET, None)
        elif deal.take_profit_price is not None and price >= deal.take_profit_price:
            self._exit(CloseReason.TAKE_PROFIT, OrderType.LIMIT, deal.take_profit_price)

    def _on_price_exits(self, deal: Deal, price: Decimal, opening: bool) -> None:
        """Trailing, steps, break-even: the price first moves the trailing levels; then at a
        candle's open a stop goes first, on a falling leg a take profit does."""
        exits = self._exits_of(deal)
        if exits.reach(self.cause, price):
            self._touch(deal)  # (then, not before: the order of a step's changes is stored)
        stop, reason = exits.stop()
        stopped = stop is not None and price <= stop
        trailed = exits.tp_level is not None and price <= exits.tp_level
        if stopped and (opening or not trailed):
            if reason is CloseReason.TRAILING_STOP_LOSS:
                deal.stop_trailing_triggered(self.cause, highest=exits.sl_highest, level=stop)
            self._exit(reason, OrderType.MARKET, None)
        elif trailed:
            deal.trailing_triggered(self.cause, highest=exits.tp_highest, level=exits.tp_level)
            self._exit(CloseReason.TRAILING_TAKE_PROFIT, OrderType.MARKET, None)
        elif exits.config.take_profit_steps:
            # a gap through several steps sells each at the open, in order
            while (self.deal is deal and not self._exiting()
                   and (step := exits.step_price()) is not None and price >= step):
                order = self._place(OrderPurpose.TAKE_PROFIT_STEP, OrderSide.SELL,
                                    OrderType.LIMIT, exits.step_amount(), step)
                self._exit_order = order if order.is_open else None
        elif (exits.tp_highest is None and exits.config.trailing_take_profit_pct is None
              and deal.take_profit_price is not None and price >= deal.take_profit_price):
            self._exit(CloseReason.TAKE_PROFIT, OrderType.LIMIT, deal.take_profit_price)

    def on_order_update(self, update: ExchangeOrder) -> None:
        order = self.orders.get(update.client_order_id)
        if order is None:
            return  # not ours, or already final
        if update.observed:
            self._observed(order, update)
            return
        if order.exchange_order_id is None and update.status is not OrderStatus.REJECTED:
            order.accept(self._cause, update.exchange_order_id)
        for trade in update.trades:
            if order.fill(
                self._cause,
                trade_id=trade.trade_id,
                price=trade.price,
                amount=trade.amount,
                fee=trade.fee,
                fee_currency=trade.fee_currency,
            ):
                self._on_trade(order, trade.price, trade.amount, trade.fee)
        if update.status is OrderStatus.REJECTED:
            order.reject(self._cause, update.reason or "rejected")
            self.tally.orders_rejected += 1
        elif update.status is OrderStatus.CANCELLED and order.is_open:
            order.cancel(self._cause, update.reason or "cancelled")
        self._touch(order)
        if not order.is_open:
            self.orders.pop(order.client_order_id, None)

    def _observed(self, order: Order, update: ExchangeOrder) -> None:
        """A live exchange's report: recorded as observations, fees as charged, the deal
        told what it really holds (a fee in the base asset is not held)."""
        status = update.status
        if status is OrderStatus.SUBMITTED:
            return  # no answer yet: reconciliation finds the order (or not) by its client id
        if (order.exchange_order_id is None and update.exchange_order_id
                and status not in (OrderStatus.REJECTED, OrderStatus.LOST)):
            order.accept(self._cause, update.exchange_order_id, observed=True)
        base, _, quote = order.pair.partition("/")
        for trade in update.trades:
            # a fee in a third asset with no known rate counts 0 in P/L; it stays recorded
            # in its own asset on the order (and drift would show it)
            fee_quote = trade.fee_in_quote(base, quote)
            fee_quote = ZERO if fee_quote is None else fee_quote
            recorded = order.observe_trade(
                self._cause, trade_id=trade.trade_id, price=trade.price, amount=trade.amount,
                fee=trade.fee, fee_currency=trade.fee_currency, fee_quote=fee_quote,
                exchange_time_ms=trade.time_ms)
            if not recorded or order.side is not OrderSide.BUY:
                continue
            if self.deal is None or order.deal_id != self.deal.id:
                # a buy the exchange filled after its deal closed (its cancel came too
                # late): recorded on the order; its units stay on the account (drift)
                log.warning("order %s filled after its deal closed", order.client_order_id)
                continue
            self._on_trade(order, trade.price, trade.base_held_change(order.side, base),
                           fee_quote)
        self._touch(order)
        if order.side is OrderSide.SELL and order.status is OrderStatus.FILLED:
            # an exit may fill in several trades: the deal closes on the whole of it
            self._on_trade(order, order.average_price, order.filled, order.fees)
        if status is OrderStatus.REJECTED and order.is_open:
            order.reject(self._cause, update.reason or "rejected")
            self.tally.orders_rejected += 1
            deal = self.deal
            if deal is not None and order.deal_id == deal.id and deal.units > ZERO:
                # the deal (and the bot's status) says which order cannot be placed, and why
                deal.order_rejected(self._cause, order_id=order.id, purpose=str(order.purpose),
                                    safety_order=order.safety_order,
                                    reason=update.reason or "rejected")
                self._touch(deal)
        elif status is OrderStatus.CANCELLED and order.is_open:
            order.cancel(self._cause, update.reason or "cancelled")
        elif status is OrderStatus.LOST and order.is_open:
            order.lose(self._cause, update.reason or "the exchange does not know this order")
            self._on_lost(order)
        if (status in (OrderStatus.REJECTED, OrderStatus.LOST)
                and order.purpose is OrderPurpose.SAFETY and self.deal is not None
                and order.deal_id == self.deal.id and retried(status.value, order.reason)):
            if self._retries is None:
                self._retries = SafetyRetries()
            self._retries.refused(self.deal.id, order.safety_order, status.value,
                                  update.reason or status.value)
        if not order.is_open:
            self.orders.pop(order.client_order_id, None)
        if self._ladder_pending and self.deal is not None and self.deal.units > ZERO:
            self._ladder_pending = False
            self._place_ladder()

    def _on_lost(self, order: Order) -> None:
        deal = self.deal
        if deal is None or order.deal_id != deal.id:
            return
        deal.order_lost(self._cause, order_id=order.id, purpose=str(order.purpose))
        self._touch(deal)
        if order.purpose is OrderPurpose.BASE and deal.units == ZERO:
            self._ladder_pending = False
            deal.cancel(self._cause, "the base order was lost: the exchange does not know it")
            self._finish_deal(deal)

    # --- decisions ------------------------------------------------------------------------

    def on_close(self, price: Decimal) -> None:
        """A candle closed at ``price``: a running bot without a deal opens one."""
        assert self._cause is not None, "begin_step() first"
        if not self.wants_next_close:
            return
        if self.ready_at is not None and self._cause.at < self.ready_at:
            return
        self._open_deal(price)

    def open_deal_now(self, price: Decimal) -> None:
        """Open a deal now at ``price`` (a start_deal signal): the base order buys at the
        venue's market, as at a close. Call ``begin_step`` first. ``DEAL_ALREADY_OPEN``,
        ``BOT_NOT_RUNNING`` or ``BOT_COOLING_DOWN`` when it may not."""
        assert self._cause is not None, "begin_step() first"
        if self.deal is not None:
            raise InvalidTransitionError("the bot already has an open deal",
                                         code="DEAL_ALREADY_OPEN")
        if self.bot.status is not BotStatus.RUNNING:
            raise InvalidTransitionError(f"the bot is {self.bot.status}",
                                         code="BOT_NOT_RUNNING")
        if self.ready_at is not None and self._cause.at < self.ready_at:
            raise InvalidTransitionError(f"the bot cools down until {self.ready_at}",
                                         code="BOT_COOLING_DOWN")
        self._open_deal(price)

    def _open_deal(self, price: Decimal) -> None:
        config = self.config
        if self.risk is not None and not self._risk_allows_deal(config.base_order_quote):
            return
        deal = Deal.open(
            self.ids.new_id(),
            self._cause,
            bot_id=self.bot.id,
            owner_id=self.bot.owner_id,
            exchange_account_id=self.bot.exchange_account_id,
            pair=config.pair,
            take_profit_pct=config.take_profit_pct,
            stop_loss_pct=config.stop_loss_pct,
        )
        self.deal = deal
        self.bot.start_deal(self._cause, deal.id)
        self._touch(deal)
        self._touch(self.bot)
        base = self._place(OrderPurpose.BASE, OrderSide.BUY, OrderType.MARKET,
                           config.base_order_quote / price, None)
        if base.is_open and deal.units == ZERO:
            # live: no fill known yet (or no answer): the ladder follows the base order's fill
            self._ladder_pending = True
            return
        if deal.units == ZERO:
            deal.cancel(self._cause, "the base order was not filled")
            self._finish_deal(deal)
            # Retrying at every close would record the same refusal again and again; like
            # a person, the bot stops and says why (resetting the error resumes it).
            self.bot.fail(self._cause, f"the base order of {config.base_order_quote} "
                          f"{config.quote_asset} was refused: {base.reason or base.status}")
            return
        self._place_ladder()

    def _place_ladder(self, placed: frozenset[int] = frozenset()) -> None:
        """Rest the safety orders below the base order's fill (those not ``placed``); the
        first one a risk limit refuses, and those after it, are not placed."""
        for n, level_price, units in safety_orders(self.config, self._base_fill_price):
            if n in placed:
                continue
            if self.risk is not None and not self._risk_allows_safety(n, level_price * units):
                return
            self._place(OrderPurpose.SAFETY, OrderSide.BUY, OrderType.LIMIT, units,
                        level_price, safety_order=n)

    def _retry_safety(self, deal: Deal) -> None:
        """At a step: the refused safety orders that are due sent again, new orders at
        their levels of the plan (``application/safety_retries.py``); none once the deal
        exits, and none past a risk limit (as the ladder: that one and those after it)."""
        due = self._retries.due()
        if not due or self._exiting():
            return
        if deal.steps_sold or any(o.side is OrderSide.SELL for o in self.orders.values()):
            self._retries = None  # exiting: no more buys
            return
        base = self._base_fill_price or deal.entry_price
        levels = {n: (price, units) for n, price, units in safety_orders(self.config, base)}
        for n in due:
            if n not in levels:  # (the plan was edited since: no such level now)
                continue
            price, units = levels[n]
            if self.risk is not None and not self._risk_allows_safety(n, price * units):
                self._retries = None
                return
            retries = self._retries
            retries.sent(n)  # (before: a refusal of this order is heard while it is sent)
            self._place(OrderPurpose.SAFETY, OrderSide.BUY, OrderType.LIMIT, units, price,
                        safety_order=n)
            if self.deal is not deal or self._retries is not retries:
                return

    def restore_refusals(self, refusals: dict[int, int]) -> None:
        """After a restart (live): the open deal's levels whose every order the exchange
        refused or lost, and how often, as the log has them: sent again from the next
        step, unless given up."""
        if not refusals:
            return
        self._retries = SafetyRetries()
        for n, count in sorted(refusals.items()):
            self._retries.restore(n, count)

    def _risk_allows_deal(self, adds_quote: Decimal) -> bool:
        """Asked before a deal opens; a refusal is recorded on the bot (once while the same
        limit holds) and no order is sent."""
        try:
            self.risk(self.bot.owner_id, adds_quote, "deal", ZERO)
        except RiskLimitError as refused:
            self.bot.refuse_deal(self.cause, refused.limit, refused.message)
            self._touch(self.bot)
            return False
        return True

    def _risk_allows_safety(self, n: int, adds_quote: Decimal) -> bool:
        try:
            self.risk(self.bot.owner_id, adds_quote, "safety_order", self.committed_quote())
        except RiskLimitError as refused:
            self.deal.refuse_safety_order(self.cause, n, refused.limit, refused.message)
            self._touch(self.deal)
            return False
        return True

    def committed_quote(self) -> Decimal:
        """What the open deal commits: its buys' cost (fees excluded) and what its open
        buy orders would spend (the risk limits' measure): a limit buy at its price, the
        market base order at the price it was sized at, its quote over its amount (the
        quote stays while the deal is open: ``Bot.edit_config``). WHY: a base order a live
        exchange had not filled yet counted nothing, and every buy of its owner judged
        meanwhile (another bot's deal, a position) could take the same room."""
        deal = self.deal
        if deal is None or deal.status is not DealStatus.OPEN:
            return ZERO
        resting = ZERO
        for o in self.orders.values():
            if o.side is OrderSide.BUY and o.is_open:
                if o.price is not None:
                    resting += o.remaining * o.price
                else:  # (the base order: the engine's only market buy)
                    resting += self.config.base_order_quote * o.remaining / o.amount
        return deal.cost + resting

    def resume_ladder(self, placed: frozenset[int]) -> None:
        """After a restart (live): rest the safety orders of the open deal that were never
        placed (the process stopped between the base fill and the ladder). Call
        ``begin_step`` first."""
        deal = self.deal
        if deal is None or deal.units == ZERO or deal.entry_price is None:
            return
        if deal.steps_sold or any(o.side is OrderSide.SELL for o in self.orders.values()):
            return  # exiting: no more buys
        self._base_fill_price = deal.entry_price
        self._place_ladder(placed)

    def close_at_market(self, reason: CloseReason = CloseReason.MANUAL) -> None:
        """Sell the open deal's units now at the venue's current price (a person's or an
        operator's decision, not a target): a market order with purpose MANUAL. Call
        ``begin_step`` first. If the venue refuses it, the deal stays open."""
        assert self._cause is not None, "begin_step() first"
        deal = self.deal
        if deal is None or deal.units == ZERO:
            raise InvalidTransitionError("the bot has no open deal to close",
                                         code="DEAL_NOT_OPEN")
        self._manual_reason = reason
        self._place(OrderPurpose.MANUAL, OrderSide.SELL, OrderType.MARKET, deal.units, None)

    def _exiting(self) -> bool:
        """live: a sell the exchange has not filled yet (one exit at a time)"""
        return self._exit_order is not None and self._exit_order.is_open

    def _exit(self, reason: CloseReason, order_type: OrderType, price: Decimal | None) -> None:
        purpose = OrderPurpose.STOP_LOSS if reason in _STOPS else OrderPurpose.TAKE_PROFIT
        if self._sized is not None:
            # live: the exchange may have filled a resting buy since the last look. Cancel
            # them first: each one's final state (its fills) reaches the deal, and the exit
            # then sells everything the deal really holds.
            self._cancel_resting(exclude="")
            if self.deal is None or self.deal.units == ZERO:
                return
        order = self._place(purpose, OrderSide.SELL, order_type, self.deal.units, price)
        self._exit_order = order if order.is_open else None

    def restore_order(self, order: Order) -> None:
        """An open order of the open deal, as the log has it (after a restart)."""
        self.orders[order.client_order_id] = order
        if order.side is OrderSide.SELL:
            self._exit_order = order

    def _place(
        self,
        purpose: OrderPurpose,
        side: OrderSide,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        safety_order: int = 0,
    ) -> Order:
        deal = self.deal
        if self._sized is not None:
            amount, price = self._sized(deal.pair, side, amount, price)
        order_id = self.ids.new_id()
        order = Order.submit(
            order_id,
            self._cause,
            client_order_id=order_id.hex,
            owner_id=self.bot.owner_id,
            exchange_account_id=self.bot.exchange_account_id,
            pair=deal.pair,
            side=side,
            type=order_type,
            amount=amount,
            price=price,
            purpose=purpose,
            safety_order=safety_order,
            bot_id=self.bot.id,
            deal_id=deal.id,
        )
        self.orders[order.client_order_id] = order
        self._touch(order)
        request = OrderRequest(order.client_order_id, deal.pair, side, order_type, amount, price,
                               deal.id.hex)
        self.on_order_update(self.exchange.create_order(request))
        return order

    def _on_trade(self, order: Order, price: Decimal, amount: Decimal, fee: Decimal) -> None:
        deal = self.deal
        self._touch(deal)  # or a safety fill or the exit would never reach the store
        if order.side is OrderSide.BUY:
            if order.purpose is OrderPurpose.BASE:
                self._base_fill_price = price
            deal.record_buy(self._cause, order_id=order.id, safety_order=order.safety_order,
                            price=price, amount=amount, fee=fee)
            return
        if order.purpose is OrderPurpose.TAKE_PROFIT_STEP:
            if deal.steps_sold < len(self.config.take_profit_steps) - 1 and amount < deal.units:
                self._step_sold(deal, order, price, amount, fee)
                return
            self.tally.take_profit_steps_filled += 1
        reason = (self._take_profit_reason(deal) if order.purpose is OrderPurpose.TAKE_PROFIT
                  else CloseReason.TAKE_PROFIT_STEP
                  if order.purpose is OrderPurpose.TAKE_PROFIT_STEP
                  else CloseReason.TRAILING_STOP_LOSS if (
                      order.purpose is OrderPurpose.STOP_LOSS and deal.trailing_stop_hit)
                  else CloseReason.STOP_LOSS if order.purpose is OrderPurpose.STOP_LOSS
                  else self._manual_reason)
        deal.close(self._cause, reason=reason, order_id=order.id, price=price, amount=amount,
                   fee=fee, dust_ok=self._sized is not None)
        self._count_closed(deal)
        self._cancel_resting(exclude=order.client_order_id)
        self._finish_deal(deal)

    def _step_sold(self, deal: Deal, order: Order, price: Decimal, amount: Decimal,
                   fee: Decimal) -> None:
        """A take profit step sold part of the deal. The first one cancels the resting
        safety orders (the step prices stay where they are) and, with
        ``stop_loss_to_breakeven``, puts the stop at the average."""
        first = deal.steps_sold == 0
        average = deal.average_entry if first else deal.step_average
        deal.sell_step(self._cause, step=deal.steps_sold + 1, order_id=order.id, price=price,
                       amount=amount, fee=fee, average=average)
        self.tally.take_profit_steps_filled += 1
        if first:
            self._cancel_resting(exclude=order.client_order_id)
        stop = average if self.config.stop_loss_to_breakeven else deal.stop_loss_price
        deal.move_targets(self._cause, take_profit_price=self._exits_of(deal).step_price(),
                          stop_loss_price=stop)

    @staticmethod
    def _take_profit_reason(deal: Deal) -> CloseReason:
        # once trailing started, the trailing exit is the deal's only take profit
        if getattr(deal, "trailing_highest", None) is not None:
            return CloseReason.TRAILING_TAKE_PROFIT
        return CloseReason.TAKE_PROFIT

    def cancel_resting_orders(self) -> int:
        """Cancel every order resting on the venue (an emergency exit whose sell was
        refused): how many. Call ``begin_step`` first."""
        resting = sum(1 for o in self.orders.values() if o.exchange_order_id is not None)
        self._cancel_resting(exclude="")
        return resting

    def resting_orders(self) -> int:
        return sum(1 for o in self.orders.values() if o.exchange_order_id is not None)

    def _cancel_resting(self, exclude: str) -> None:
        for client_id, order in list(self.orders.items()):
            if client_id == exclude or order.exchange_order_id is None:
                continue
            self._cancel(order)

    def _cancel(self, order: Order) -> None:
        if order.status is not OrderStatus.CANCEL_REQUESTED:  # else: asked before, unanswered
            order.request_cancel(self._cause)
        self._touch(order)
        self.on_order_update(self.exchange.cancel_order(order.exchange_order_id, order.pair))

    def _finish_deal(self, deal: Deal) -> None:
        self.bot.finish_deal(self._cause, deal.id)
        self._touch(self.bot)
        self.deal = None
        self._retries = None
        if deal.status is DealStatus.CLOSED and self.config.cooldown_seconds:
            self.ready_at = self._cause.at + timedelta(seconds=self.config.cooldown_seconds)

    def _count_closed(self, deal: Deal) -> None:
        t = self.tally
        t.deals_closed += 1
        reason = deal.close_reason
        t.take_profits += reason in _TAKE_PROFITS
        t.trailing_take_profits += reason is CloseReason.TRAILING_TAKE_PROFIT
        t.stop_losses += reason in _STOPS
        t.trailing_stop_losses += reason is CloseReason.TRAILING_STOP_LOSS
        pnl = deal.realized_pnl
        t.realized_pnl += pnl
        if pnl > ZERO:
            t.wins += 1
            t.gross_profit += pnl
        elif pnl < ZERO:
            t.gross_loss -= pnl
        t.fees_closed_deals += deal.fees
        t.max_safety_orders_used = max(t.max_safety_orders_used, deal.safety_orders_used)
        seconds = int((deal.closed_at - deal.opened_at).total_seconds())
        t.deal_seconds += seconds
        t.longest_deal_seconds = max(t.longest_deal_seconds, seconds)
        if self.keep_deals:
            t.closed_deals.append(deal)

    # --- reading --------------------------------------------------------------------------

    def open_deal_state(self) -> tuple[Decimal, Decimal] | None:
        """``(units, cost + buy fees − what its sells took in after fees)`` of the open
        deal, for marking it to market."""
        deal = self.deal
        if deal is None or deal.status is not DealStatus.OPEN or deal.units == ZERO:
            return None
        if deal.steps_sold:
            return deal.units, deal.cost + deal.buy_fees - (deal.proceeds - deal.sell_fees)
        return deal.units, deal.cost + deal.buy_fees

    def open_deal_cost(self) -> Decimal | None:
        """What the open deal's buys cost with their fees (capital committed to it)."""
        deal = self.deal
        if deal is None or deal.status is not DealStatus.OPEN or deal.units == ZERO:
            return None
        return deal.cost + deal.buy_fees
