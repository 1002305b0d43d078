"""Billing's settings, from ``TRADETAPE_*`` environment variables:

- ``TRADETAPE_STRIPE_API_KEY``: Stripe's secret key. Setting it turns billing on: the
  plans' limits apply to every user (a user without a paid subscription has FREE's).
- ``TRADETAPE_BILLING``: ``on`` applies the plans' limits without Stripe (a server that
  sells nothing yet); ``off`` never applies them, even with a key. Default: on with a key.
- ``TRADETAPE_STRIPE_API_BASE``: another base URL for Stripe's API (a local stub in tests).
- ``TRADETAPE_STRIPE_WEBHOOK_SECRET``: the ``whsec_…`` secret ``POST /webhooks/stripe``
  verifies each event's signature with (no secret: every event is refused).
- ``TRADETAPE_STRIPE_PRICE_PRO``: the Stripe price the default PRO plan sells.
- ``TRADETAPE_GRACE_DAYS``: how long a past-due subscription keeps its plan (default 3).
- ``TRADETAPE_PUBLIC_URL``: where Stripe sends the user back after checkout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from domain.errors import DomainError


@dataclass(frozen=True)
class BillingSettings:
    enabled: bool = False
    api_key: str | None = None
    api_base: str | None = None
    webhook_secret: str | None = None
    price_pro: str | None = None
    grace_days: int = 3
    public_url: str = "http://127.0.0.1:8000"

    @property
    def grace(self) -> timedelta:
        return timedelta(days=self.grace_days)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> BillingSettings:
        key = env.get("TRADETAPE_STRIPE_API_KEY") or None
        switch = (env.get("TRADETAPE_BILLING") or "").strip().lower()
        if switch not in ("", "on", "off"):
            raise DomainError("TRADETAPE_BILLING is on or off", code="INVALID_SETTING",
                              field="TRADETAPE_BILLING")
        days = env.get("TRADETAPE_GRACE_DAYS") or "3"
        if not days.isdigit() or not 0 <= int(days) <= 365:
            raise DomainError("TRADETAPE_GRACE_DAYS is a whole number of days, 0 to 365",
                              code="INVALID_SETTING", field="TRADETAPE_GRACE_DAYS")
        return cls(enabled=switch == "on" or (switch == "" and key is not None),
                   api_key=key, api_base=env.get("TRADETAPE_STRIPE_API_BASE") or None,
                   webhook_secret=env.get("TRADETAPE_STRIPE_WEBHOOK_SECRET") or None,
                   price_pro=env.get("TRADETAPE_STRIPE_PRICE_PRO") or None,
                   grace_days=int(days),
                   public_url=(env.get("TRADETAPE_PUBLIC_URL") or cls.public_url).rstrip("/"))

    def __repr__(self) -> str:  # never a secret in a log
        return (f"BillingSettings(enabled={self.enabled}, api_base={self.api_base!r}, "
                f"grace_days={self.grace_days})")
