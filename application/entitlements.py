"""What a user's plan lets them do, checked where they would hit it: creating and starting
bots, trading on live accounts, webhooks. A refusal is ``PLAN_LIMIT_REACHED``, naming the
limit and the plan that lifts it.

A user whose subscription is trialing, active or past due (in its grace) has the limits of
the plan version they bought; anyone else has FREE's. With billing off (the default of a
server without ``TRADETAPE_STRIPE_API_KEY``) no plan limit applies at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.bots import Bot, BotMode, BotStatus
from domain.errors import DomainError, NotFoundError
from domain.plans import FREE, PlanTerms, plan_id
from domain.rosters import BotRoster, roster_id
from domain.subscriptions import Subscription, subscription_id

if TYPE_CHECKING:
    from application.plans import PlanCatalogue
    from application.trading import Trading

LIMIT_NAMES = {"max_bots": "maxBots", "max_live_bots": "maxLiveBots",
               "max_webhooks": "maxWebhooks"}


@dataclass(frozen=True)
class Entitled:
    """A user's plan terms now and whether the limits apply (``enforced``)."""

    plan: PlanTerms
    enforced: bool

    def allows(self, limit: str, count: int) -> bool:
        return not self.enforced or count <= self.plan.limit(limit)


class Entitlements:
    def __init__(self, trading: Trading, catalogue: PlanCatalogue, *, enabled: bool):
        self.trading, self.catalogue, self.enabled = trading, catalogue, enabled

    def subscription(self, owner_id: str, as_of: datetime | None = None
                     ) -> Subscription | None:
        """The owner's subscription now, or as its events stood at ``as_of``."""
        if as_of is not None:
            return self._as_of(subscription_id(str(owner_id)), as_of)
        try:
            return self.trading.load(subscription_id(str(owner_id)), Subscription)
        except NotFoundError:
            return None

    def of(self, owner_id: UUID | str, as_of: datetime | None = None) -> Entitled:
        sub = self.subscription(str(owner_id), as_of)
        if sub is not None and sub.is_entitled():
            return Entitled(self.catalogue.at_version(sub.plan_id, sub.plan_version),
                            self.enabled)
        return Entitled(self.free(as_of), self.enabled)

    def free(self, as_of: datetime | None = None) -> PlanTerms:
        plan = (self.catalogue.find(FREE.code) if as_of is None
                else self._as_of(plan_id(FREE.code), as_of))
        return plan.terms if plan is not None else FREE

    def _as_of(self, aggregate_id: UUID, as_of: datetime):
        """The aggregate made by its events up to ``as_of`` (None before its first)."""
        aggregate = None
        for event in self.trading.repository.event_store.get(aggregate_id):
            if event.timestamp > as_of:
                break
            aggregate = event.mutate(aggregate)
        return aggregate

    def check(self, owner_id: UUID | str, limit: str, count: int) -> None:
        """PLAN_LIMIT_REACHED unless the owner may have ``count`` of ``limit``."""
        if not self.enabled:
            return
        entitled = self.of(owner_id)
        if entitled.allows(limit, count):
            return
        lifts = self.catalogue.lifting(limit, count)
        upgrade = f"; plan {lifts.code} allows {lifts.limit(limit)}" if lifts else ""
        raise DomainError(
            f"{LIMIT_NAMES[limit]} {entitled.plan.limit(limit)} of plan "
            f"{entitled.plan.code} reached{upgrade}", code="PLAN_LIMIT_REACHED",
            field=LIMIT_NAMES[limit])

    def check_feature(self, owner_id: UUID | str, feature: str) -> None:
        if not self.enabled:
            return
        entitled = self.of(owner_id)
        if not entitled.enforced or feature in entitled.plan.features:
            return
        lifts = self.catalogue.lifting(feature, -1)
        upgrade = f"; plan {lifts.code} includes it" if lifts else ""
        raise DomainError(f"plan {entitled.plan.code} does not include {feature}{upgrade}",
                          code="PLAN_LIMIT_REACHED", field=feature)

    def webhook_limit(self, owner_id: UUID, owned: int) -> None:
        """For ``createWebhook`` (DESIGN.md): one more webhook than the ``owned`` ones."""
        self.check_feature(owner_id, "webhooks")
        self.check(owner_id, "max_webhooks", owned + 1)

    def check_new_bot(self, owner_id: str, live: bool) -> None:
        """Before creating a bot: one more than the owner's bots that are not stopped."""
        if not self.enabled:
            return
        if live:
            self.check_feature(owner_id, "live_trading")
        held = [b for b in self._bots(owner_id) if b.status is not BotStatus.STOPPED]
        self.check(owner_id, "max_bots", len(held) + 1)

    def check_start(self, owner_id: str, bot_id: UUID, live: bool) -> None:
        """Before starting a bot: one more running bot (and live bot) than now."""
        if not self.enabled:
            return
        running = [b for b in self._bots(owner_id)
                   if b.status is BotStatus.RUNNING and b.id != bot_id]
        self.check(owner_id, "max_bots", len(running) + 1)
        if live:
            self.check_feature(owner_id, "live_trading")
            self.check(owner_id, "max_live_bots",
                       sum(b.mode is BotMode.LIVE for b in running) + 1)

    def _bots(self, owner_id: str) -> list[Bot]:
        """The owner's bots that may be running: those their roster holds (bots not
        stopped), or, for an owner with no roster yet, every bot they created."""
        from application.user_views import bots_owned_by

        try:
            ids = [UUID(i) for i in self.trading.load(roster_id(str(owner_id)),
                                                      BotRoster).bots]
        except NotFoundError:
            ids = bots_owned_by(self.trading, str(owner_id))
        return [self.trading.get_bot(i) for i in ids]

    def as_dict(self, owner_id: UUID | str, as_of: datetime | None = None) -> dict:
        entitled = self.of(owner_id, as_of)
        t = entitled.plan
        return {"plan": t.code, "enforced": entitled.enforced, "max_bots": t.max_bots,
                "max_live_bots": t.max_live_bots, "max_webhooks": t.max_webhooks,
                "features": list(t.features)}
