"""A body past its route's limit is refused once the limit's bytes have arrived: the server
stops reading there instead of holding a sender's whole upload in memory first (the Stripe
webhook and the reset-password form read the whole body, then checked its size)."""

from __future__ import annotations

import asyncio

import pytest

CHUNK = 64 * 1024
SENT_CHUNKS = 400  # 25 MiB offered


def post_endlessly(app, path: str) -> tuple[int, int]:
    """POST ``path`` with a body of SENT_CHUNKS chunks: (status, chunks the app read)."""
    pulled, status = [0], []

    async def receive():
        pulled[0] += 1
        return {"type": "http.request", "body": b"x" * CHUNK,
                "more_body": pulled[0] < SENT_CHUNKS}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("testserver", 80),
             "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")]}
    asyncio.run(app(scope, receive, send))
    return status[0], pulled[0]


@pytest.mark.parametrize(("path", "limit"), [
    ("/webhooks/stripe", 1_000_000), ("/reset-password", 8192),
    ("/webhooks/8f132933-5743-4951-a4c9-9ba22a5db12b", 16_384)])
def test_a_body_over_the_limit_is_refused_without_reading_the_rest(server, path, limit):
    status, pulled = post_endlessly(server.client.app, path)
    assert status == 413
    assert pulled <= limit // CHUNK + 2 < SENT_CHUNKS
