"""CORS: none by default (a page of another origin gets no CORS header, so the browser
keeps the answer from it); ``TRADETAPE_CORS_ORIGINS`` lets the listed origins' pages call
the API, preflight included."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.cors import cors_origins
from api.server import create_app
from domain.errors import DomainError

FRONT_END = "https://dashboard.example.com"
PREFLIGHT = {"Origin": FRONT_END, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}
QUERY = {"query": "{ __typename }"}


def client_for(server, monkeypatch, origins: str | None) -> TestClient:
    if origins is None:
        monkeypatch.delenv("TRADETAPE_CORS_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("TRADETAPE_CORS_ORIGINS", origins)
    return TestClient(create_app(server.runtime, manage_runtime=False))


def test_a_foreign_origin_gets_no_cors_headers_by_default(server, monkeypatch):
    with client_for(server, monkeypatch, None) as client:
        answer = client.post("/graphql", json=QUERY, headers={"Origin": FRONT_END})
        assert answer.json() == {"data": {"__typename": "Query"}}
        assert "access-control-allow-origin" not in answer.headers
        preflight = client.options("/graphql", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in preflight.headers


def test_a_listed_origin_passes_the_preflight_and_reads_the_answer(server, monkeypatch):
    with client_for(server, monkeypatch, f" {FRONT_END}/ , http://localhost:5173") as client:
        preflight = client.options("/graphql", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == FRONT_END
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "access-control-allow-credentials" not in preflight.headers  # no cookies
        answer = client.post("/graphql", json=QUERY, headers={"Origin": FRONT_END})
        assert answer.headers["access-control-allow-origin"] == FRONT_END
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
        refused = client.post("/graphql", json={"query": "{ nope }"},
                              headers={"Origin": "http://localhost:5173"})
        assert refused.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert refused.json()["errors"][0]["extensions"]["code"]  # readable by that page


def test_an_origin_not_listed_still_gets_no_cors_headers(server, monkeypatch):
    with client_for(server, monkeypatch, FRONT_END) as client:
        other = {**PREFLIGHT, "Origin": "https://evil.example.net"}
        preflight = client.options("/graphql", headers=other)
        assert "access-control-allow-origin" not in preflight.headers
        answer = client.post("/graphql", json=QUERY,
                             headers={"Origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("value", ["dashboard.example.com", "https://a.example/path",
                                   "ftp://files.example"])
def test_a_value_that_is_not_an_origin_is_refused_with_a_code(value):
    with pytest.raises(DomainError) as refused:
        cors_origins({"TRADETAPE_CORS_ORIGINS": value})
    assert refused.value.code == "INVALID_SETTING"


def test_origins_are_read_comma_separated_and_none_by_default():
    assert cors_origins({}) == ()
    assert cors_origins({"TRADETAPE_CORS_ORIGINS": "http://a.example:8080, *"}) == (
        "http://a.example:8080", "*")
