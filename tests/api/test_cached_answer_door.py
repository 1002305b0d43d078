"""A cached answer leaves the server by a shorter way than the answer it repeats (api/
server.py's door: no framework layer behind the guard), yet a client cannot tell them
apart: same body, same headers (CORS and content type included), its own request id; and
the door's limits still refuse what they refused before the answer was kept."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from api.graphql.response_cache import GraphQLResponseCache
from api.http_limits import RequestLimits
from api.server import create_app

FRONT_END = "https://dashboard.example.com"
BOTS = "{ bots(first: 10) { edges { node { id name status } } } }"


def answer_cache(app) -> GraphQLResponseCache:
    layer = app.door
    while not isinstance(layer, GraphQLResponseCache):
        layer = layer.app
    return layer


def test_a_cached_answer_has_the_headers_and_body_of_the_answer_it_repeats(server):
    alice = server.user("alice")
    server.create_bot(alice, "first")
    app = create_app(server.runtime, manage_runtime=False, cors_origins=(FRONT_END,))
    asked = {"Origin": FRONT_END, "Authorization": f"Bearer {alice.token}"}
    with TestClient(app) as client:
        made = client.post("/graphql", json={"query": BOTS},
                           headers={**asked, "X-Request-ID": "made-1"})
        cache = answer_cache(app)
        hits = cache.hits
        kept = client.post("/graphql", json={"query": BOTS},
                           headers={**asked, "X-Request-ID": "kept-2"})
        unnamed = client.post("/graphql", json={"query": BOTS}, headers=asked)

    assert cache.hits == hits + 2  # the two later answers were the kept one
    assert made.status_code == kept.status_code == 200
    assert kept.content == made.content == unnamed.content
    assert json.loads(kept.content)["data"]["bots"]["edges"][0]["node"]["name"] == "first"
    assert (made.headers["x-request-id"], kept.headers["x-request-id"]) == ("made-1", "kept-2")
    assert unnamed.headers["x-request-id"] not in ("made-1", "kept-2", "")

    def without_id(answer) -> dict[str, str]:
        return {k: v for k, v in answer.headers.items() if k != "x-request-id"}

    assert without_id(kept) == without_id(made) == without_id(unnamed)
    assert kept.headers["access-control-allow-origin"] == FRONT_END
    assert kept.headers["access-control-expose-headers"] == "X-Request-ID"
    assert kept.headers["content-type"].startswith("application/json")


def test_an_origin_not_listed_is_not_allowed_by_a_cached_answer_either(server):
    alice = server.user("alice")
    app = create_app(server.runtime, manage_runtime=False, cors_origins=(FRONT_END,))
    asked = {"Origin": "https://elsewhere.example.com",
             "Authorization": f"Bearer {alice.token}"}
    with TestClient(app) as client:
        answers = [client.post("/graphql", json={"query": BOTS}, headers=asked)
                   for _ in range(2)]
        assert answer_cache(app).hits >= 1

    made, kept = answers
    assert made.status_code == kept.status_code == 200
    assert "access-control-allow-origin" not in kept.headers
    assert ({k for k in kept.headers if k.startswith("access-control-")}
            == {k for k in made.headers if k.startswith("access-control-")})


def test_the_request_limits_still_refuse_a_query_whose_answer_is_cached(server):
    alice = server.user("alice")
    body = json.dumps({"query": BOTS}).encode()
    app = create_app(server.runtime, manage_runtime=False,
                     limits=RequestLimits(max_body_bytes=len(body) + 60, max_json_depth=4))
    asked = {"Authorization": f"Bearer {alice.token}", "Content-Type": "application/json"}
    padded = body[:-1] + b" " * 100 + b"}"  # the same request, over the body's limit
    nested = json.dumps({"query": BOTS, "extensions": {"a": {"b": {"c": {"d": 1}}}}})
    with TestClient(app) as client:
        assert [client.post("/graphql", content=body, headers=asked).status_code
                for _ in range(2)] == [200, 200]
        assert answer_cache(app).hits >= 1
        too_large = client.post("/graphql", content=padded, headers=asked)
        too_deep = client.post("/graphql", content=nested.encode(), headers=asked)

    assert too_large.status_code == 413
    assert json.loads(too_large.content)["errors"][0]["extensions"]["code"] == (
        "REQUEST_TOO_LARGE")
    assert too_deep.status_code == 400
    assert json.loads(too_deep.content)["errors"][0]["extensions"]["code"] == (
        "NESTING_TOO_DEEP")
    assert too_large.headers["x-request-id"] and too_deep.headers["x-request-id"]


def test_other_paths_still_pass_the_cors_layer(server):
    app = create_app(server.runtime, manage_runtime=False, cors_origins=(FRONT_END,))
    with TestClient(app) as client:
        health = client.get("/health", headers={"Origin": FRONT_END})
        preflight = client.options("/graphql", headers={
            "Origin": FRONT_END, "Access-Control-Request-Method": "POST"})

    assert health.headers["access-control-allow-origin"] == FRONT_END
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == FRONT_END
