"""``POST /webhooks/{id}``: signals from outside (TradingView alerts, scripts), answered with
JSON ``{"status": "accepted" | "ignored" | "refused", "code"?, "message"?}``. Translation
only: ``application.signal_intake`` decides. The id is a UUID (``/webhooks/stripe`` is
billing's, a route of its own)."""

from __future__ import annotations

from uuid import UUID

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.bounded_body import body_at_most
from api.webhook_timings import SignalTimings, no_lap, timings_on
from application.runtime import Runtime
from domain.signals import MAX_BODY_BYTES

SIGNATURE_HEADER = "X-Tradetape-Signature"


def add_webhook_routes(app: FastAPI, runtime: Runtime) -> None:
    timed = timings_on()

    @app.post("/webhooks/{webhook_id:uuid}")
    async def receive_signal(webhook_id: UUID, request: Request) -> JSONResponse:
        timings = SignalTimings() if timed else None
        lap = timings.lap if timings is not None else no_lap
        body = await body_at_most(request, MAX_BODY_BYTES)  # the signature is over these
        lap("read")
        if body is None:
            return _answer(413, "SIGNAL_TOO_LARGE", f"a signal is at most {MAX_BODY_BYTES} "
                                                    "bytes")
        if not runtime.accepting_commands:
            return _answer(503, "SHUTTING_DOWN", "the server is shutting down: send again")
        signature = request.headers.get(SIGNATURE_HEADER)
        # No catch-up of the read models here: the live loop's next step does it (within
        # a second), once for every signal of that second, never in a sender's way.
        answer = await to_thread.run_sync(runtime.signals.receive, webhook_id, body, signature,
                                          lap)
        response = JSONResponse(answer.body, status_code=answer.status)
        if timings is not None:
            timings.lap("answer")  # back on the event loop, the answer rendered
            timings.log()
        return response


def _answer(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "refused", "code": code, "message": message},
                        status_code=status)
