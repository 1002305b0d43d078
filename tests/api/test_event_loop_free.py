"""The server keeps answering while one request waits for the database: checking a
caller's access token reads their events on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import threading

import httpx


def test_a_request_waiting_to_authenticate_does_not_hold_up_the_others(server):
    alice, bob = server.user("alice"), server.user("bob")
    identity = server.runtime.identity
    authenticate, release, waiting = identity.authenticate, threading.Event(), threading.Event()

    def slow_for_alice(token):
        if token == alice.token:
            waiting.set()
            release.wait(10)  # alice's user is being read from a slow database
        return authenticate(token)

    identity.authenticate = slow_for_alice
    try:
        order = asyncio.run(_alice_then_bob(server.client.app, alice.token, bob.token,
                                            waiting, release))
    finally:
        identity.authenticate = authenticate
    assert order == ["bob@example.com", "alice@example.com"]


async def _alice_then_bob(app, alice_token: str, bob_token: str, waiting: threading.Event,
                          release: threading.Event) -> list[str]:
    answered: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def me(token: str) -> None:
            response = await client.post("/graphql", json={"query": "{ me { email } }"},
                                         headers={"Authorization": f"Bearer {token}"})
            answered.append(response.json()["data"]["me"]["email"])

        alices = asyncio.create_task(me(alice_token))
        while not waiting.is_set():
            await asyncio.sleep(0.01)
        await asyncio.wait_for(me(bob_token), 5)  # answered while alice's check waits
        release.set()
        await alices
    return answered
