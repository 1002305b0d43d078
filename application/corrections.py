"""Corrections without rewriting history: an operator corrects the fees of a bot's fills.

Stored events never change. A correction is worked out from the fills as they were recorded
(each deal's ``BuyFilled`` and ``Closed`` events) and a fee rule, and recorded as one
``Deal.FeesCorrected`` event per deal whose fees change, all in one transaction and under one
correlation id, naming the operator and the reason. Read models apply it from its position
on: P/L and balances change from the correction onward, and ``--as-of`` a moment before it
still shows what was believed then.

The same working-out with the rate the venue charged finds nothing to correct: that is how
the fees a view shows are derived again from the fills and the rule (``--dry-run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from application.backtest import BACKTEST_OWNER
from application.trading import Trading
from domain.bots import Bot
from domain.deals import Deal
from domain.errors import DomainError
from domain.fees import describe_proportional, proportional_fee
from domain.money import ZERO
from domain.numbers import FEE_RATE, parse_number


@dataclass(frozen=True)
class FillFee:
    deal_id: UUID
    version: int  # of the fill's event in the deal: what identifies the fill
    order_id: UUID
    side: str  # "buy" or "sell"
    at: datetime
    price: Decimal
    amount: Decimal
    recorded: Decimal
    corrected: Decimal

    @property
    def change(self) -> Decimal:
        return self.corrected - self.recorded


@dataclass
class DealCorrection:
    deal_id: UUID
    fills: list[FillFee] = field(default_factory=list)

    def change(self, side: str) -> Decimal:
        return sum((f.change for f in self.fills if f.side == side), ZERO)

    @property
    def total(self) -> Decimal:
        return self.change("buy") + self.change("sell")


@dataclass(frozen=True)
class FeeCorrection:
    bot_id: UUID
    rule: str
    reason: str
    deals: list[DealCorrection]
    recorded: bool
    correlation_id: str | None = None

    @property
    def fills(self) -> int:
        return sum(len(d.fills) for d in self.deals)

    @property
    def total(self) -> Decimal:
        """What the correction adds to the fees paid (negative: a refund)."""
        return sum((d.total for d in self.deals), ZERO)


def checked_fee_rate(value: object) -> Decimal:
    """The number rule every input follows (digits, exponent, ASCII), in [0, 1)."""
    return parse_number(value, "fee_rate", FEE_RATE)


def plan_fee_correction(trading: Trading, bot_id: UUID, fee_rate: Decimal,
                        since: datetime | None = None,
                        until: datetime | None = None) -> list[DealCorrection]:
    """Each deal of the bot with a fill in ``[since, until)`` (the fill's own time) whose
    fee under ``fee_rate`` differs from the fee recorded, with those fills."""
    bot = trading.load(bot_id, Bot)
    if bot.owner_id == BACKTEST_OWNER:
        raise DomainError("a backtest is corrected by running it again with the right "
                          "--fee-rate, not by changing its stored events",
                          code="BACKTEST_NOT_CORRECTABLE")
    rate = checked_fee_rate(fee_rate)
    plans = []
    for deal_id in _deal_ids(trading, bot_id):
        plan = DealCorrection(deal_id)
        for fill in _fills(deal_id, trading.repository.event_store.get(deal_id), rate):
            if fill.change and (since is None or fill.at >= since) and (
                    until is None or fill.at < until):
                plan.fills.append(fill)
        if plan.fills:
            plans.append(plan)
    return plans


def correct_fees(trading: Trading, bot_id: UUID, fee_rate: Decimal, reason: str, actor: str,
                 since: datetime | None = None, until: datetime | None = None,
                 dry_run: bool = False) -> FeeCorrection:
    """Plan the correction and, unless ``dry_run``, record it: every deal or none."""
    rate = checked_fee_rate(fee_rate)
    plans = plan_fee_correction(trading, bot_id, rate, since, until)
    rule = describe_proportional(rate)
    if dry_run:
        return FeeCorrection(bot_id, rule, reason, plans, recorded=False)
    if not plans:
        raise DomainError("every fill in that range paid the fee that rule gives",
                          code="NOTHING_TO_CORRECT")
    cause = trading.cause(actor)
    deals = []
    for plan in plans:
        deal = trading.load(plan.deal_id, Deal)
        deal.correct_fees(cause, buy_fee_change=plan.change("buy"),
                          sell_fee_change=plan.change("sell"),
                          fill_fees={str(f.version): f.corrected for f in plan.fills},
                          fee_currency=deal.pair.partition("/")[2], rule=rule, reason=reason)
        deals.append(deal)
    trading.save_all(*deals)  # one transaction: a concurrent change refuses it whole
    return FeeCorrection(bot_id, rule, reason, plans, recorded=True,
                         correlation_id=cause.correlation_id)


def _deal_ids(trading: Trading, bot_id: UUID) -> list[UUID]:
    """The bot's deals, in the order it opened them (from its ``DealStarted`` events)."""
    return [event.deal_id for event in trading.repository.event_store.get(bot_id)
            if isinstance(event, Bot.DealStarted)]


def _fills(deal_id: UUID, events, rate: Decimal) -> list[FillFee]:
    """The deal's fills, each with the fee it counts now (as recorded, or as the latest
    correction set it) and the fee ``rate`` gives it."""
    fills: dict[int, FillFee] = {}
    for event in events:
        if isinstance(event, Deal.FeesCorrected):
            for version, fee in event.fill_fees.items():
                fill = fills[int(version)]
                fills[fill.version] = replace(fill, recorded=fee)
            continue
        if isinstance(event, Deal.BuyFilled):
            side = "buy"
        elif isinstance(event, Deal.Closed):
            side = "sell"
        else:
            continue
        version = event.originator_version
        fills[version] = FillFee(
            deal_id, version, event.order_id, side, event.timestamp, event.price,
            event.amount, event.fee, proportional_fee(event.amount, event.price, rate))
    return list(fills.values())
