"""``POST /webhooks/stripe``: Stripe's events, their signature checked with
``stripe.Webhook``'s check and ``TRADETAPE_STRIPE_WEBHOOK_SECRET``. A bad or missing
signature: 400, nothing recorded. Each event id is handled once (a second delivery: 200).
Refused, each with its code, one log line and nothing recorded: a signed event not as
Stripe sends them (400 ``STRIPE_EVENT_MALFORMED``), one about a payment not recorded yet
(409 ``STRIPE_EVENT_EARLY``), a subscription at a Stripe price no plan sells (422
``STRIPE_PRICE_UNKNOWN``) or another rule of ours (422, its code), and any event while
the server shuts down (503 ``SHUTTING_DOWN``). Stripe delivers any answer but 2xx again,
for up to three days; a handler that fails: 500, likewise.
Registered before any ``/webhooks/{id}`` route, so that the literal path wins."""

from __future__ import annotations

import logging

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.bounded_body import body_at_most
from application.runtime import Runtime
from application.stripe_objects import StripeEventEarlyError, StripeShapeError
from domain.errors import ConcurrencyConflictError, DomainError

LOG = logging.getLogger("tradetape.billing")
MAX_EVENT_BYTES = 1_000_000  # Stripe's events are tens of kilobytes


def add_stripe_webhook(app: FastAPI, runtime: Runtime) -> None:
    @app.post("/webhooks/stripe")
    async def stripe_webhook(request: Request) -> JSONResponse:
        payload = await body_at_most(request, MAX_EVENT_BYTES)
        if payload is None:
            return _answer(413, "PAYLOAD_TOO_LARGE", "an event is at most 1 MB")
        try:
            event = runtime.billing.verified_event(payload,
                                                   request.headers.get("stripe-signature"))
        except DomainError as error:
            LOG.warning("stripe webhook refused: %s", error.code)
            return _answer(400, error.code, error.message)
        if not runtime.accepting_commands:  # the store closes under it: Stripe retries
            LOG.warning("stripe event %s refused: SHUTTING_DOWN", _said(event, "id"))
            return _answer(503, "SHUTTING_DOWN", "the server is shutting down; Stripe "
                           "delivers the event again")
        try:
            outcome = await to_thread.run_sync(lambda: _handle(runtime, event))
        except ConcurrencyConflictError as error:  # raced other writers three times
            return _failed(event, error)
        except DomainError as error:  # the event, or our settings: not a fault, no 5xx
            LOG.warning("stripe event %s (%s) refused: %s", _said(event, "id"),
                        _said(event, "type"), error)
            return _answer(_status(error), error.code, error.message)
        except Exception as error:  # Stripe retries on 5xx: nothing was recorded
            return _failed(event, error)
        return JSONResponse({"received": True, "outcome": outcome})


def _status(error: DomainError) -> int:
    if isinstance(error, StripeShapeError):
        return 400
    return 409 if isinstance(error, StripeEventEarlyError) else 422


def _failed(event: dict, error: Exception) -> JSONResponse:
    LOG.error("stripe event %s (%s) failed: %s: %s", _said(event, "id"),
              _said(event, "type"), type(error).__name__, error)
    return _answer(500, getattr(error, "code", "HANDLER_FAILED"),
                   "the event was not recorded; Stripe will deliver it again")


def _said(event: dict, key: str) -> str:
    """A field of the event for a log line, bounded: the event is the sender's text."""
    return str(event.get(key))[:80]


def _handle(runtime: Runtime, event: dict) -> str:
    try:
        return runtime.stripe_webhooks.handle(event)
    finally:
        runtime.refresh()


def _answer(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
