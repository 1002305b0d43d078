"""The payment gateway through Stripe's official library (``stripe``, pinned in
pyproject.toml): customers, Checkout Sessions for subscriptions, the customer portal,
cancellation at the period's end, refunds, invoices paid from the wallet, PaymentIntents
for top-ups, and the signature check of webhook events. The library is imported when a
gateway is made, not before."""

from __future__ import annotations

import json
from typing import Any

from domain.errors import DomainError
from domain.payments import PaymentProviderUnavailable


class StripeGateway:
    def __init__(self, api_key: str, api_base: str | None = None):
        import stripe

        addresses = {"api": api_base.rstrip("/")} if api_base else None
        # Retries with Stripe's idempotency keys: a lost answer is asked again safely.
        self._client = stripe.StripeClient(api_key, base_addresses=addresses,
                                           max_network_retries=2)

    def _call(self, what: str, request) -> Any:
        """One request; Stripe's errors become ours (``STRIPE_ERROR``, never the key): an
        outage (no connection, a 5xx, 429: after the library's own retries) as
        ``PaymentProviderUnavailable``, a refusal (any other answer) as a DomainError."""
        import stripe

        try:
            return request()
        except stripe.StripeError as error:
            message = getattr(error, "user_message", None) or type(error).__name__
            status = getattr(error, "http_status", None) or 0
            if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError) or (
                    status >= 500 or status == 429):
                raise PaymentProviderUnavailable(
                    f"Stripe did not answer to {what}: {message}") from None
            raise DomainError(f"Stripe refused to {what}: {message}",
                              code="STRIPE_ERROR") from None

    def create_customer(self, user_id: str, email: str | None) -> str:
        params: dict = {"metadata": {"tradetape_user": user_id}}
        if email:
            params["email"] = email
        return self._call("create a customer",
                          lambda: self._client.v1.customers.create(params)).id

    def checkout_url(self, *, customer: str, price: str, user_id: str, success_url: str,
                     cancel_url: str) -> str:
        params = {"mode": "subscription", "customer": customer,
                  "client_reference_id": user_id,
                  "line_items": [{"price": price, "quantity": 1}],
                  "subscription_data": {"metadata": {"tradetape_user": user_id}},
                  "success_url": success_url, "cancel_url": cancel_url}
        session = self._call("start a checkout",
                             lambda: self._client.v1.checkout.sessions.create(params))
        return session.url

    def portal_url(self, customer: str, return_url: str) -> str:
        params = {"customer": customer, "return_url": return_url}
        return self._call("open the billing portal",
                          lambda: self._client.v1.billing_portal.sessions.create(params)).url

    def set_cancel_at_period_end(self, subscription: str, cancel: bool) -> None:
        params = {"cancel_at_period_end": cancel}
        self._call("change the subscription", lambda: self._client.v1.subscriptions.update(
            subscription, params))

    def refund(self, payment_intent: str, amount_minor: int | None) -> str:
        params: dict = {"payment_intent": payment_intent}
        if amount_minor is not None:
            params["amount"] = amount_minor
        return self._call("refund", lambda: self._client.v1.refunds.create(params)).id

    def settle_open_invoices(self, subscription: str) -> list[str]:
        """Every open invoice of ``subscription`` marked ``paid_out_of_band`` (Stripe makes
        no charge for it and stops retrying the card); their ids."""
        params: dict = {"subscription": subscription, "status": "open", "limit": 100}
        found = self._call("list the subscription's open invoices",
                           lambda: self._client.v1.invoices.list(params))
        settled = []
        for invoice in found.data:
            self._call("mark an invoice paid from the wallet", lambda i=invoice.id: (
                self._client.v1.invoices.pay(i, {"paid_out_of_band": True})))
            settled.append(invoice.id)
        return settled

    def create_payment_intent(self, *, customer: str, amount_minor: int, currency: str,
                              method: str, user_id: str, email: str | None = None) -> dict:
        """A PaymentIntent for a top-up; for PromptPay, confirmed at once so that Stripe's
        answer carries the QR code (``next_action.promptpay_display_qr_code``)."""
        params: dict = {"amount": amount_minor, "currency": currency.lower(),
                        "customer": customer, "payment_method_types": [method],
                        "metadata": {"tradetape_user": user_id,
                                     "tradetape_purpose": "top_up"}}
        if method == "promptpay":
            params.update(confirm=True, payment_method_data={
                "type": "promptpay", "billing_details": {"email": email or ""}})
        intent = self._call("take a top-up",
                            lambda: self._client.v1.payment_intents.create(params)).to_dict()
        qr = ((intent.get("next_action") or {}).get("promptpay_display_qr_code") or {})
        return {"id": intent["id"], "client_secret": intent.get("client_secret"),
                "status": intent.get("status"),
                "qr_code_url": qr.get("image_url_png") or qr.get("hosted_instructions_url"),
                "qr_code_data": qr.get("data")}


def verified_event(payload: bytes, signature: str | None, secret: str | None) -> dict:
    """The event Stripe signed, as a plain dict; ``SIGNATURE_INVALID`` when the header is
    missing or wrong, too old, or there is no secret to check it with;
    ``STRIPE_EVENT_MALFORMED`` when the signed body is not a JSON object."""
    import stripe

    if not signature or not secret:
        raise DomainError("missing Stripe-Signature (or no webhook secret set)",
                          code="SIGNATURE_INVALID")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret,
                                              stripe.Webhook.DEFAULT_TOLERANCE)
    except (stripe.SignatureVerificationError, ValueError):
        raise DomainError("the Stripe signature does not match", code="SIGNATURE_INVALID"
                          ) from None
    # Signed, so it came from Stripe (or whoever holds the secret): what it holds is read
    # here, not by ``construct_event``, which fails with a traceback on JSON not an object.
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python reads
        event = None
    if not isinstance(event, dict):
        raise DomainError("the signed body is not a JSON object",
                          code="STRIPE_EVENT_MALFORMED")
    return event
