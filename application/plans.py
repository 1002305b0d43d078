"""The plan catalogue: plans defined, changed and listed by administrators, the default
FREE and PRO created on first start, and a plan found by its code, its Stripe price or the
version a subscription bought."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.utils import get_topic

from application.replay import read_log
from domain.errors import DomainError, NotFoundError
from domain.plans import FREE, PRO, Plan, PlanTerms, plan_id
from domain.recording import SYSTEM

if TYPE_CHECKING:
    from application.trading import Trading


class PlanCatalogue:
    def __init__(self, trading: Trading, price_pro: str | None = None):
        self.trading, self.price_pro = trading, price_pro

    def ensure_defaults(self, actor: str = SYSTEM) -> list[str]:
        """FREE and PRO, where no plan of that code exists yet (PRO sells
        ``TRADETAPE_STRIPE_PRICE_PRO``, also given to a PRO that has no Stripe price yet);
        the codes created."""
        pro = self.find(PRO.code)
        if pro is not None and self.price_pro and pro.terms.stripe_price is None:
            self.update(PRO.code, actor, stripe_price=self.price_pro)
        made = []
        for terms in (FREE, dataclasses.replace(PRO, stripe_price=self.price_pro)):
            if self.find(terms.code) is None:
                try:
                    self.trading.save_all(Plan.define(self.trading.cause(actor), terms))
                    made.append(terms.code)
                except DomainError as error:  # another process made it first
                    if self.find(terms.code) is None:
                        raise error
        return made

    def create(self, terms: PlanTerms, actor: str) -> Plan:
        if self.find(terms.code) is not None:
            raise DomainError(f"plan {terms.code} exists: update it", code="PLAN_EXISTS",
                              field="code")
        plan = Plan.define(self.trading.cause(actor), terms)
        self.trading.save_all(plan)
        return plan

    def update(self, code: str, actor: str, **changes) -> Plan:
        """A new version of plan ``code`` with ``changes`` (field names of PlanTerms)."""
        plan = self.get(code)
        plan.update(self.trading.cause(actor), dataclasses.replace(plan.terms, **changes))
        self.trading.save_all(plan)
        return plan

    def define(self, terms: PlanTerms, actor: str) -> Plan:
        """Created, or updated to exactly these terms."""
        if self.find(terms.code) is None:
            return self.create(terms, actor)
        return self.update(terms.code, actor, **{
            f.name: getattr(terms, f.name) for f in dataclasses.fields(terms)
            if f.name != "code"})

    def find(self, code: str) -> Plan | None:
        try:
            return self.trading.load(plan_id(code), Plan)
        except NotFoundError:
            return None

    def get(self, code: str) -> Plan:
        plan = self.find(code)
        if plan is None:
            raise NotFoundError(f"no plan {code}", field="code")
        return plan

    def by_id(self, plan: UUID) -> Plan:
        return self.trading.load(plan, Plan)

    def at_version(self, plan: UUID, version: int) -> PlanTerms:
        """The terms a subscription bought: the plan as it was at ``version``."""
        return self.trading.repository.get(plan, version=version).terms

    def all(self) -> list[Plan]:
        """Every plan, cheapest first (then by code)."""
        ids = [n.originator_id for n in read_log(self.trading, [get_topic(Plan.Defined)])]
        plans = [self.trading.load(i, Plan) for i in dict.fromkeys(ids)]
        return sorted(plans, key=lambda p: (p.terms.price, p.terms.code))

    def by_stripe_price(self, price: str | None) -> Plan | None:
        return next((p for p in self.all() if price and p.terms.stripe_price == price), None)

    def lifting(self, limit: str, needed: int) -> PlanTerms | None:
        """The cheapest plan allowing ``needed`` of ``limit`` (or the feature ``limit``)."""
        for plan in self.all():
            terms = plan.terms
            if (limit in terms.features if needed < 0 else terms.limit(limit) >= needed):
                return terms
        return None


def plan_as_json(plan: Plan) -> dict:
    t = plan.terms
    return {"code": t.code, "name": t.name, "price": str(t.price), "currency": t.currency,
            "period": t.period, "stripe_price": t.stripe_price, "max_bots": t.max_bots,
            "max_live_bots": t.max_live_bots, "max_webhooks": t.max_webhooks,
            "features": list(t.features), "version": plan.version}


def plan_summary(plan: Plan) -> str:
    return json.dumps(plan_as_json(plan))
