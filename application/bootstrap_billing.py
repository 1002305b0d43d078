"""The composition root's billing: plans, subscriptions and Stripe."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from application.trading import Trading


def open_billing(trading: Trading, paper=None, environ=None):
    """Plans, subscriptions and Stripe as ``TRADETAPE_STRIPE_*`` / ``TRADETAPE_BILLING`` say
    (``application.billing_settings``); Stripe through its library when a key is set."""
    import os

    from adapters.payments.stripe_gateway import verified_event
    from application.billing import Billing, BotSlots
    from application.billing_settings import BillingSettings

    settings = BillingSettings.from_environ(os.environ if environ is None else environ)
    gateway = None
    if settings.api_key:
        from adapters.payments.stripe_gateway import StripeGateway

        gateway = StripeGateway(settings.api_key, settings.api_base)
    slots = BotSlots(trading, paper.lock if paper else None, paper.follow if paper else None)
    return Billing(trading, settings, gateway=gateway, slots=slots, verify=verified_event)
