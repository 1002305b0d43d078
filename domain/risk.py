"""A user's risk limits (the UserRisk aggregate) and the rule that holds them.

The rule is a pure function of figures: the limits, what the user has open now
(``Exposure``) and what an order would add. Whoever is about to send a buy (the engine
before a deal's base order or a safety order, a position before its entry) asks it first;
a refusal is ``RiskLimitError`` (``RISK_LIMIT_REACHED``) naming the limit and the figures.

Committed quote: what a deal or a position has spent on buys (fees excluded) plus what its
resting buy orders would spend (price × amount left). A limit is passed when the figure
after the order would be greater than the limit; reaching it exactly is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError
from domain.money import ZERO
from domain.recording import Cause, TradetapeAggregate

RISK_LIMIT_REACHED = "RISK_LIMIT_REACHED"
OPENS = ("deal", "safety_order", "position")
# The GraphQL (and JSON) names of the limits: what a refusal names.
LIMIT_NAMES = {"max_open_deals": "maxOpenDeals", "max_position_quote": "maxPositionQuote",
               "max_exposure_quote": "maxExposureQuote",
               "max_daily_loss_quote": "maxDailyLossQuote"}


def risk_id(owner_id: str) -> UUID:
    """One UserRisk per user, found without an index."""
    return uuid5(NAMESPACE_URL, f"tradetape:user-risk:{owner_id}")


@dataclass(frozen=True)
class Limits:
    """None: no limit. Amounts are in the quote currency of the user's bots."""

    max_open_deals: int | None = None
    max_position_quote: Decimal | None = None
    max_exposure_quote: Decimal | None = None
    max_daily_loss_quote: Decimal | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass(frozen=True)
class Exposure:
    """What a user has open now: ``open_deals`` (bot deals), ``committed_quote`` (of every
    open deal and position, see the module's docstring)."""

    open_deals: int = 0
    committed_quote: Decimal = ZERO

    def __add__(self, other: Exposure) -> Exposure:
        return Exposure(self.open_deals + other.open_deals,
                        self.committed_quote + other.committed_quote)


class RiskCheck(Protocol):
    """The port the engine (and positions) ask before a buy is sent: raises
    ``RiskLimitError`` when it would pass one of the owner's limits."""

    def __call__(self, owner_id: str, adds_quote: Decimal, opens: str,
                 position_quote: Decimal = ZERO) -> None: ...


class RiskLimitError(DomainError):
    """A buy that would pass one of the user's limits; ``limit`` is its GraphQL name."""

    code = RISK_LIMIT_REACHED

    def __init__(self, limit: str, message: str):
        super().__init__(f"{limit}: {message}", field=limit)
        self.limit = limit


def refusal(limits: Limits, exposure: Exposure, *, opens: str, adds_quote: Decimal,
            position_quote: Decimal = ZERO,
            halted_until: datetime | None = None) -> RiskLimitError | None:
    """Why a buy of ``adds_quote`` that ``opens`` a deal, a safety order or a position may
    not be sent (None: it may). ``position_quote``: what the deal (or position) it belongs
    to commits already; ``halted_until``: the daily loss limit was reached, no new deal or
    position before that time."""
    if opens not in OPENS:
        raise ValueError(f"opens must be one of {OPENS}, not {opens!r}")
    new = opens != "safety_order"
    if new and halted_until is not None:
        return RiskLimitError("maxDailyLossQuote", "the daily loss limit was reached: "
                              f"nothing new opens before {halted_until.isoformat()}")
    if opens == "deal" and limits.max_open_deals is not None and (
            exposure.open_deals + 1 > limits.max_open_deals):
        return RiskLimitError("maxOpenDeals", f"{exposure.open_deals} deals open, the limit "
                              f"is {limits.max_open_deals}")
    position = position_quote + adds_quote
    if limits.max_position_quote is not None and position > limits.max_position_quote:
        return RiskLimitError("maxPositionQuote", f"this {opens.replace('_', ' ')} would "
                              f"bring the {'position' if opens == 'position' else 'deal'} "
                              f"to {position}, the limit is {limits.max_position_quote}")
    total = exposure.committed_quote + adds_quote
    if limits.max_exposure_quote is not None and total > limits.max_exposure_quote:
        return RiskLimitError("maxExposureQuote", f"this {opens.replace('_', ' ')} would "
                              f"bring your exposure from {exposure.committed_quote} to "
                              f"{total}, the limit is {limits.max_exposure_quote}")
    return None


def day_of(at: datetime) -> str:
    """The UTC day ``at`` falls on, as ``YYYY-MM-DD``."""
    return at.astimezone(UTC).date().isoformat()


def next_midnight(at: datetime) -> datetime:
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


class UserRisk(TradetapeAggregate):
    """One user's limits and the day's realized result that ``max_daily_loss_quote`` holds.

    ``day_pnl``: the realized P/L of the deals closed on ``day`` (UTC) since the daily loss
    limit was set; ``halted_until``: the limit was reached, the user's bots are paused until
    then (the next 00:00 UTC)."""

    owner_id: str
    limits: Limits
    day: str | None
    day_pnl: Decimal
    halted_until: datetime | None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it."""

    class Opened(TradetapeAggregate.Created, Event):
        owner_id: str

        def apply(self, risk: UserRisk) -> None:
            risk.owner_id, risk.limits = self.owner_id, Limits()
            risk.day, risk.day_pnl, risk.halted_until = None, ZERO, None

    class LimitsSet(Event):
        max_open_deals: int | None
        max_position_quote: Decimal | None
        max_exposure_quote: Decimal | None
        max_daily_loss_quote: Decimal | None

        def apply(self, risk: UserRisk) -> None:
            risk.limits = Limits(self.max_open_deals, self.max_position_quote,
                                 self.max_exposure_quote, self.max_daily_loss_quote)

    class ResultCounted(Event):
        """A deal of the user closed with ``realized_pnl`` on ``day`` (UTC)."""

        deal_id: UUID
        day: str
        realized_pnl: Decimal

        def apply(self, risk: UserRisk) -> None:
            if risk.day != self.day:
                risk.day, risk.day_pnl = self.day, ZERO
            risk.day_pnl += self.realized_pnl

    class DailyLossReached(Event):
        """The day's realized loss reached the limit: every bot of the user pauses until
        ``until`` (the next 00:00 UTC)."""

        day: str
        loss: Decimal
        limit: Decimal
        until: datetime

        def apply(self, risk: UserRisk) -> None:
            risk.halted_until = self.until

    class DailyLossLifted(Event):
        """A new day: the bots the daily loss limit paused resume."""

        day: str

        def apply(self, risk: UserRisk) -> None:
            risk.halted_until = None

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def open(cls, owner_id: str, cause: Cause) -> UserRisk:
        return cls._start(cls.Opened, risk_id(owner_id), cause, owner_id=owner_id)

    def set_limits(self, cause: Cause, limits: Limits) -> None:
        if limits != self.limits:
            self._record(self.LimitsSet, cause, max_open_deals=limits.max_open_deals,
                         max_position_quote=limits.max_position_quote,
                         max_exposure_quote=limits.max_exposure_quote,
                         max_daily_loss_quote=limits.max_daily_loss_quote)

    @property
    def day_loss(self) -> Decimal:
        """The day's realized loss as a positive amount (0 when the day is not a loss)."""
        return -self.day_pnl if self.day_pnl < ZERO else ZERO

    def count_result(self, cause: Cause, deal_id: UUID, realized_pnl: Decimal) -> bool:
        """A deal closed: counted into its day; True when the daily loss limit is reached
        now (and was not before)."""
        self._record(self.ResultCounted, cause, deal_id=deal_id, day=day_of(cause.at),
                     realized_pnl=realized_pnl)
        limit = self.limits.max_daily_loss_quote
        if limit is None or self.halted_until is not None or self.day_loss < limit:
            return False
        self._record(self.DailyLossReached, cause, day=self.day, loss=self.day_loss,
                     limit=limit, until=next_midnight(cause.at))
        return True

    def lift_if_due(self, cause: Cause) -> bool:
        if self.halted_until is None or cause.at < self.halted_until:
            return False
        self._record(self.DailyLossLifted, cause, day=day_of(cause.at))
        return True

    def halted_at(self, at: datetime) -> datetime | None:
        """Until when nothing new opens, seen at ``at`` (None: not halted)."""
        until = self.halted_until
        return until if until is not None and at < until else None
