"""The server answers /health before the GraphQL schema is built (it is built on a thread of
its own after the runtime starts); a GraphQL request that comes first waits for it and gets
the same answer it would have got later."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from fastapi.testclient import TestClient

import api.server
from api.server import create_app
from tests.api.conftest import PASSWORD, open_server


def test_importing_the_server_does_not_import_strawberry_or_graphql_core():
    probe = (
        "import json, sys, api.server; print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('strawberry', 'graphql'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


@pytest.fixture
def held_build(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A server whose schema build waits until the test lets it go."""
    runtime, _clock = open_server(f"sqlite:///{tmp_path / 'server.sqlite'}", monkeypatch)
    release = threading.Event()
    real = api.server._graphql_router

    def held(*args):
        assert release.wait(30)
        return real(*args)

    monkeypatch.setattr(api.server, "_graphql_router", held)
    try:
        yield runtime, release
    finally:
        release.set()
        runtime.stop()


def test_health_answers_while_the_schema_is_still_being_built(held_build):
    runtime, release = held_build
    app = create_app(runtime, manage_runtime=False)
    with TestClient(app) as client:
        response = client.get("/health")
        assert response.status_code in (200, 503)
        assert "event_store" in response.json()
        assert not app.state.graphql.ready  # still held: /health did not wait for it
        release.set()


def test_a_graphql_request_that_comes_before_the_schema_waits_and_is_answered(held_build):
    runtime, release = held_build
    runtime.identity.register("early@example.com", PASSWORD, verified=True, display_name="early")
    login = """mutation($email: String!, $password: String!) {
      login(email: $email, password: $password) {
        __typename ... on AuthPayload { user { email } } } }"""
    app = create_app(runtime, manage_runtime=False)
    with TestClient(app) as client:
        answers: list = []
        asking = threading.Thread(
            target=lambda: answers.append(
                client.post(
                    "/graphql",
                    json={
                        "query": login,
                        "variables": {"email": "early@example.com", "password": PASSWORD},
                    },
                )
            )
        )
        asking.start()
        asking.join(0.5)
        assert asking.is_alive() and not answers  # waiting for the schema, not refused
        release.set()
        asking.join(30)
        assert answers[0].status_code == 200
        assert answers[0].json() == {
            "data": {"login": {"__typename": "AuthPayload", "user": {"email": "early@example.com"}}}
        }
        # GraphiQL (a browser's GET) is the offline page once the router is there
        page = client.get("/graphql", headers={"accept": "text/html,application/xhtml+xml"})
        assert "GraphiQL.createFetcher" in page.text and "/graphiql-assets/" in page.text


def test_a_schema_that_cannot_be_built_fails_graphql_but_not_health(tmp_path, monkeypatch):
    runtime, _clock = open_server(f"sqlite:///{tmp_path / 'server.sqlite'}", monkeypatch)

    def broken(*_args):
        raise ImportError("no strawberry here")

    monkeypatch.setattr(api.server, "_graphql_router", broken)
    try:
        with TestClient(
            create_app(runtime, manage_runtime=False), raise_server_exceptions=False
        ) as client:
            assert "event_store" in client.get("/health").json()
            assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 500
    finally:
        runtime.stop()
