"""Login limits over a real server: ``X-Forwarded-For`` counts only from a trusted proxy,
and a guesser is stopped without locking the account's owner out."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import LOGIN, PASSWORD, ServerProcess, new_user

pytestmark = pytest.mark.timeout(120)


def login_from(server: ServerProcess, email: str, password: str, forwarded_for: str) -> dict:
    response = server.client.post("/graphql", json={
        "query": LOGIN, "variables": {"email": email, "password": password}},
        headers={"X-Forwarded-For": forwarded_for})
    assert response.status_code == 200, response.text
    return response.json()["data"]["login"]


def test_a_forwarded_for_header_from_an_untrusted_peer_changes_no_limit(launch) -> None:
    server = launch()  # TRADETAPE_TRUSTED_PROXIES unset: no peer is a trusted proxy

    answers = [login_from(server, f"guess{n}@example.com", "Wrong-Password-1",
                          f"198.51.100.{n}")["code"] for n in range(21)]

    # One address in truth (the loopback peer): its 20 failures stop the 21st attempt,
    # whatever address each request claimed.
    assert answers == ["INVALID_CREDENTIALS"] * 20 + ["TOO_MANY_ATTEMPTS"]


def test_behind_a_trusted_proxy_a_guesser_is_stopped_and_the_owner_still_gets_in(
        launch) -> None:
    server = launch(env={"TRADETAPE_TRUSTED_PROXIES": "127.0.0.1"})
    new_user(server, "owner@example.com")
    guesser, owner = "203.0.113.7", "192.0.2.44"

    for _ in range(5):
        assert login_from(server, "owner@example.com", "Wrong-Password-1",
                          guesser)["code"] == "INVALID_CREDENTIALS"
    assert login_from(server, "owner@example.com", PASSWORD,
                      guesser)["code"] == "TOO_MANY_ATTEMPTS"

    began = time.monotonic()
    answer = login_from(server, "owner@example.com", PASSWORD, owner)
    assert answer["__typename"] == "AuthPayload", answer
    assert time.monotonic() - began >= 1.0  # slowed down, not locked
