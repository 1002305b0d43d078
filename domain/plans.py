"""The Plan aggregate: what a subscription buys (price, period, limits, features).

Plans are data an administrator defines, not code. Each change is a new version of the plan
(the aggregate's version); a subscription records the version it bought and keeps those
terms until it renews, so changing a plan never rewrites what subscribers agreed to.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError
from domain.numbers import exact_number
from domain.recording import Cause, TradetapeAggregate
from domain.text import checked_text

# Digits after the point each currency's amounts have (Stripe's minor units).
MINOR_UNITS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "THB": 2, "SGD": 2, "JPY": 0}
PERIODS = ("month", "year")
LIMITS = ("max_bots", "max_live_bots", "max_webhooks")
MAX_LIMIT = 100_000
MAX_FEATURES = 32
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
_FEATURE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_STRIPE_PRICE = re.compile(r"^[A-Za-z0-9_]{1,255}$")


def plan_id(code: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tradetape:plan:{code}")


def money_in(currency: str, amount: object, field_name: str = "amount") -> Decimal:
    """``amount`` as an exact Decimal with no more digits than ``currency`` has (THB and
    USD 2, JPY 0); UNSUPPORTED_CURRENCY or INVALID_AMOUNT otherwise."""
    if currency not in MINOR_UNITS:
        raise DomainError(f"{currency!r} is not a currency this server bills in "
                          f"({', '.join(sorted(MINOR_UNITS))})", code="UNSUPPORTED_CURRENCY",
                          field="currency")
    value = exact_number(amount, field_name)
    if value < 0 or value > Decimal(10) ** 9:
        raise DomainError("must be between 0 and 1000000000", code="INVALID_AMOUNT",
                          field=field_name)
    if value != value.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency])):
        raise DomainError(f"{currency} amounts have {MINOR_UNITS[currency]} decimals",
                          code="INVALID_AMOUNT", field=field_name)
    return value.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]))


def next_period_end(start: datetime, period: str) -> datetime:
    """A month (the same day, or the month's last) or a year after ``start``."""
    months = 12 if period == "year" else 1
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    last = calendar.monthrange(year, month)[1]
    return start.replace(year=year, month=month, day=min(start.day, last))


def to_minor(currency: str, amount: Decimal) -> int:
    """Stripe's integer amount (cents, satang, yen)."""
    return int(amount.scaleb(MINOR_UNITS[currency]))


def from_minor(currency: str, minor: int) -> Decimal:
    currency = currency.upper()
    if currency not in MINOR_UNITS or not isinstance(minor, int):
        raise DomainError(f"cannot read {minor!r} {currency}", code="UNSUPPORTED_CURRENCY")
    return Decimal(minor).scaleb(-MINOR_UNITS[currency])


@dataclass(frozen=True)
class PlanTerms:
    """One version of a plan. Limits: ``max_bots`` not stopped, ``max_live_bots`` trading
    on live accounts, ``max_webhooks``."""

    code: str
    name: str
    price: Decimal
    currency: str
    period: str
    stripe_price: str | None = None
    max_bots: int = 1
    max_live_bots: int = 0
    max_webhooks: int = 0
    features: tuple[str, ...] = field(default=())

    def checked(self) -> PlanTerms:
        """These terms, or a DomainError naming the first field that is wrong."""
        if not _CODE.match(self.code):
            raise DomainError("a plan code is A-Z, 0-9 and _, starting with a letter",
                              code="INVALID_PLAN", field="code")
        checked_text(self.name, "name", max_chars=64)
        if not self.name.strip():
            raise DomainError("must be 1 to 64 characters", code="INVALID_PLAN", field="name")
        if self.period not in PERIODS:
            raise DomainError("month or year", code="INVALID_PLAN", field="period")
        if self.stripe_price is not None and not _STRIPE_PRICE.match(self.stripe_price):
            raise DomainError("not a Stripe price id", code="INVALID_PLAN",
                              field="stripe_price")
        for name in LIMITS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not (
                    0 <= value <= MAX_LIMIT):
                raise DomainError(f"a whole number from 0 to {MAX_LIMIT}",
                                  code="INVALID_PLAN", field=name)
        if len(self.features) > MAX_FEATURES:
            raise DomainError(f"at most {MAX_FEATURES} features", code="INVALID_PLAN",
                              field="features")
        for feature in self.features:
            if not _FEATURE.match(feature):
                raise DomainError(f"{feature!r}: a feature is a-z, 0-9 and _",
                                  code="INVALID_PLAN", field="features")
        currency = self.currency.strip().upper()
        price = money_in(currency, self.price, "price")
        return PlanTerms(self.code, self.name.strip(), price, currency, self.period,
                         self.stripe_price, self.max_bots, self.max_live_bots,
                         self.max_webhooks, tuple(sorted(set(self.features))))

    def limit(self, name: str) -> int:
        return getattr(self, name)


class Plan(TradetapeAggregate):
    terms: PlanTerms

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Defined(TradetapeAggregate.Created, Event):
        code: str
        name: str
        price: Decimal
        currency: str
        period: str
        stripe_price: str | None
        max_bots: int
        max_live_bots: int
        max_webhooks: int
        features: list[str]

        def apply(self, plan: Plan) -> None:
            plan.terms = _terms_of(self)

    class Updated(Event):
        name: str
        price: Decimal
        currency: str
        period: str
        stripe_price: str | None
        max_bots: int
        max_live_bots: int
        max_webhooks: int
        features: list[str]

        def apply(self, plan: Plan) -> None:
            plan.terms = _terms_of(self, plan.terms.code)

    @classmethod
    def define(cls, cause: Cause, terms: PlanTerms) -> Plan:
        terms = terms.checked()
        return cls._start(cls.Defined, plan_id(terms.code), cause, code=terms.code,
                          **_data_of(terms))

    def update(self, cause: Cause, terms: PlanTerms) -> None:
        """A new version of the plan; nothing is recorded when nothing changes."""
        terms = terms.checked()
        if terms != self.terms:
            self._record(self.Updated, cause, **_data_of(terms))


def _data_of(terms: PlanTerms) -> dict:
    return {"name": terms.name, "price": terms.price, "currency": terms.currency,
            "period": terms.period, "stripe_price": terms.stripe_price,
            "max_bots": terms.max_bots, "max_live_bots": terms.max_live_bots,
            "max_webhooks": terms.max_webhooks, "features": list(terms.features)}


def _terms_of(event, code: str | None = None) -> PlanTerms:
    return PlanTerms(code or event.code, event.name, event.price, event.currency,
                     event.period, event.stripe_price, event.max_bots, event.max_live_bots,
                     event.max_webhooks, tuple(event.features))


# The catalogue a server starts with (an administrator changes it with `tradetape plans`).
FREE = PlanTerms("FREE", "Free", Decimal("0.00"), "USD", "month", None, max_bots=1,
                 max_live_bots=0, max_webhooks=0, features=("paper_trading",))
PRO = PlanTerms("PRO", "Pro", Decimal("10.00"), "USD", "month", None, max_bots=5,
                max_live_bots=5, max_webhooks=10,
                features=("live_trading", "paper_trading", "webhooks"))
