"""Risk limits and promotion checks as clients see them (money as Decimal strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from api.graphql.common import FieldError
from application.promotion import PromotionCheck as Check
from application.risk_limits import RiskView


@strawberry.type(description="Your risk limits (null: no limit) and where you stand now")
class RiskLimits:
    max_open_deals: int | None
    max_position_quote: Decimal | None
    max_exposure_quote: Decimal | None
    max_daily_loss_quote: Decimal | None
    open_deals: int = strawberry.field(description="your bots' deals open now")
    exposure_quote: Decimal = strawberry.field(description=(
        "quote committed by your open deals and positions: buys' cost plus resting buys"))
    day: str | None = strawberry.field(description=(
        "the UTC day the daily loss counts (since the daily loss limit was set)"))
    day_realized_pnl: Decimal
    paused_until: datetime | None = strawberry.field(description=(
        "the daily loss limit was reached: your bots are paused until then"))

    @classmethod
    def of(cls, view: RiskView) -> RiskLimits:
        limits = view.limits
        return cls(max_open_deals=limits.max_open_deals,
                   max_position_quote=limits.max_position_quote,
                   max_exposure_quote=limits.max_exposure_quote,
                   max_daily_loss_quote=limits.max_daily_loss_quote,
                   open_deals=view.exposure.open_deals,
                   exposure_quote=view.exposure.committed_quote, day=view.day,
                   day_realized_pnl=view.day_realized_pnl, paused_until=view.paused_until)


@strawberry.type
class RiskLimitsErrors:
    """Why the limits were not set (``INVALID_NUMBER``, ``NOT_POSITIVE``, ...)."""

    code: str
    message: str
    errors: list[FieldError]


RiskLimitsResult = Annotated[RiskLimits | RiskLimitsErrors,
                             strawberry.union("RiskLimitsResult")]


@strawberry.input
class RiskLimitsInput:
    """Each limit left out stays as it is; null clears it."""

    max_open_deals: int | None = strawberry.UNSET
    max_position_quote: str | None = strawberry.UNSET
    max_exposure_quote: str | None = strawberry.UNSET
    max_daily_loss_quote: str | None = strawberry.UNSET

    def changes(self) -> dict[str, object]:
        given = {"maxOpenDeals": self.max_open_deals,
                 "maxPositionQuote": self.max_position_quote,
                 "maxExposureQuote": self.max_exposure_quote,
                 "maxDailyLossQuote": self.max_daily_loss_quote}
        return {name: value for name, value in given.items() if value is not strawberry.UNSET}


@strawberry.type
class PromotionRule:
    code: str = strawberry.field(description="the error code when the rule is missed")
    passed: bool
    required: str
    actual: str
    message: str


@strawberry.type(description="What the paper → live promotion gate says about a bot")
class PromotionCheck:
    bot_id: strawberry.ID
    as_of: datetime
    passed: bool
    running_seconds: int = strawberry.field(description="time spent running on paper")
    running_days: Decimal
    closed_deals: int
    wins: int
    win_rate_pct: Decimal
    realized_profit: Decimal
    max_committed_quote: Decimal = strawberry.field(description=(
        "the most quote one deal spent on buys (base + filled safety orders, fees excluded)"))
    profit_pct: Decimal = strawberry.field(description=(
        "realized profit as a percentage of maxCommittedQuote"))
    rules: list[PromotionRule]

    @classmethod
    def of(cls, check: Check) -> PromotionCheck:
        r = check.record
        return cls(bot_id=strawberry.ID(str(check.bot_id)), as_of=check.as_of,
                   passed=check.passed, running_seconds=r.running_seconds,
                   running_days=r.running_days, closed_deals=r.closed_deals, wins=r.wins,
                   win_rate_pct=r.win_rate_pct, realized_profit=r.realized_pnl,
                   max_committed_quote=r.max_committed_quote, profit_pct=r.profit_pct,
                   rules=[PromotionRule(code=o.code, passed=o.passed, required=o.required,
                                        actual=o.actual, message=o.message)
                          for o in check.rules])
