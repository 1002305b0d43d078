"""``POST /webhooks/stripe``: Stripe's events, their signature checked with
``stripe.Webhook.construct_event`` and ``TRADETAPE_STRIPE_WEBHOOK_SECRET``. A bad or missing
signature: 400, nothing recorded. Each event id is handled once (a second delivery: 200);
a subscription at a Stripe price no plan sells: 422 ``STRIPE_PRICE_UNKNOWN``, and a handler
that fails: 500, both with nothing recorded, so Stripe delivers it again. Registered
before any ``/webhooks/{id}`` route, so that the literal path wins."""

from __future__ import annotations

import logging

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from application.runtime import Runtime
from application.stripe_objects import UnknownPriceError
from domain.errors import DomainError

LOG = logging.getLogger("tradetape.billing")
MAX_EVENT_BYTES = 1_000_000  # Stripe's events are tens of kilobytes


def add_stripe_webhook(app: FastAPI, runtime: Runtime) -> None:
    @app.post("/webhooks/stripe")
    async def stripe_webhook(request: Request) -> JSONResponse:
        payload = await request.body()
        if len(payload) > MAX_EVENT_BYTES:
            return _answer(413, "PAYLOAD_TOO_LARGE", "an event is at most 1 MB")
        try:
            event = runtime.billing.verified_event(payload,
                                                   request.headers.get("stripe-signature"))
        except DomainError as error:
            LOG.warning("stripe webhook refused: %s", error.code)
            return _answer(400, error.code, error.message)
        try:
            outcome = await to_thread.run_sync(lambda: _handle(runtime, event))
        except UnknownPriceError as error:  # the plans' settings, not a fault: no 5xx
            LOG.error("stripe event %s (%s) refused: %s", event.get("id"), event.get("type"),
                      error)
            return _answer(422, error.code, error.message)
        except Exception as error:  # Stripe retries on 5xx: nothing was recorded
            LOG.error("stripe event %s (%s) failed: %s: %s", event.get("id"),
                      event.get("type"), type(error).__name__, error)
            return _answer(500, getattr(error, "code", "HANDLER_FAILED"),
                           "the event was not recorded; Stripe will deliver it again")
        return JSONResponse({"received": True, "outcome": outcome})


def _handle(runtime: Runtime, event: dict) -> str:
    try:
        return runtime.stripe_webhooks.handle(event)
    finally:
        runtime.refresh()


def _answer(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
