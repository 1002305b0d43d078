"""Hostile requests to /graphql (security findings 3 and 9 of issue 10): what is too large,
too long, too many tokens or nested too deeply is refused before anything parses it, with
a GraphQL answer naming ``extensions.code``, and never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.graphql.limits import MAX_EXPANDED_FIELDS, MAX_FRAGMENT_DEPTH
from api.graphql.response_cache import GraphQLResponseCache
from api.http_limits import MAX_DOCUMENT_NESTING, RequestLimits
from api.server import create_app
from domain.errors import DomainError

LIMITS = RequestLimits()
PORTFOLIO = "{ portfolio { realizedPnl } }"


def post_raw(server, body: bytes | str, token: str | None = "forged") -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return server.client.post("/graphql", content=body, headers=headers)


def codes(response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def chain(length: int) -> str:
    """An operation spreading F0, which spreads F1, ... F<length-1>."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(length - 1)]
    return "\n".join(["query Chained { ...F0 }", *fragments,
                      f"fragment F{length - 1} on Query {{ __typename }}"])


# --- finding 3: body, document length, tokens ------------------------------------------------

def test_a_two_megabyte_document_is_refused_413_with_a_code(server):
    big = json.dumps({"query": "query { " + "__typename " * 200_000 + "}"})
    response = post_raw(server, big, token=None)
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "REQUEST_TOO_LARGE",
                                   "limit": LIMITS.max_body_bytes}


def test_a_body_sent_in_chunks_is_counted_as_it_arrives(server):
    def chunks():
        yield b'{"query": "{ __typename '
        for _ in range(100):
            yield b" __typename" * 100
        yield b'}"}'

    response = server.client.post("/graphql", content=chunks(),
                                  headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert codes(response) == ["REQUEST_TOO_LARGE"]


def test_a_document_over_the_length_limit_is_refused(server):
    small = RequestLimits(max_document_chars=200)
    with TestClient(create_app(server.runtime, manage_runtime=False, limits=small)) as client:
        response = client.post("/graphql", json={"query": "{ " + "__typename " * 30 + "}"})
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_TOO_LARGE"
        assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
            "data": {"__typename": "Query"}}


def test_a_document_of_too_many_tokens_is_refused_before_it_is_parsed(server):
    document = "{ " + "__typename " * LIMITS.max_document_tokens + "}"
    assert len(document) < LIMITS.max_document_chars
    response = server.client.post("/graphql", json={"query": document})
    assert codes(response) == ["TOO_MANY_TOKENS"]
    # the same document again (no cache lets it through)
    assert codes(server.client.post("/graphql", json={"query": document})) == [
        "TOO_MANY_TOKENS"]


def test_a_document_nesting_brackets_too_deeply_is_refused(server):
    value = nested(MAX_DOCUMENT_NESTING + 5)
    response = server.client.post("/graphql", json={
        "query": f"{{ bots(first: {value}) {{ pageInfo {{ hasNextPage }} }} }}"})
    assert codes(response) == ["NESTING_TOO_DEEP"]


def test_limits_come_from_the_environment_and_a_bad_one_is_refused():
    limits = RequestLimits.from_environ({"TRADETAPE_MAX_BODY_BYTES": "1024",
                                         "TRADETAPE_MAX_DOCUMENT_TOKENS": "300"})
    assert (limits.max_body_bytes, limits.max_document_tokens) == (1024, 300)
    assert limits.max_json_depth == LIMITS.max_json_depth
    for bad in ("0", "-5", "1e3", "١٢", "lots"):
        with pytest.raises(DomainError) as refused:
            RequestLimits.from_environ({"TRADETAPE_MAX_JSON_DEPTH": bad})
        assert refused.value.code == "INVALID_SETTING"


def test_the_body_limit_is_the_configured_one(server):
    tight = RequestLimits(max_body_bytes=300)
    with TestClient(create_app(server.runtime, manage_runtime=False, limits=tight)) as client:
        response = client.post("/graphql", json={"query": "{ " + "__typename " * 40 + "}"})
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["limit"] == 300
        assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 200


# --- finding 9: nesting and fragment chains --------------------------------------------------

def test_variables_nested_100000_deep_with_an_authorization_header_are_refused(server):
    tight = RequestLimits(max_body_bytes=400_000)
    body = '{"query": "query($x: String) { __typename }", "variables": {"x": ' + (
        nested(100_000) + "}}")
    with TestClient(create_app(server.runtime, manage_runtime=False, limits=tight)) as client:
        for headers in ({"Authorization": "Bearer anything"}, {}):
            response = client.post("/graphql", content=body, headers={
                "content-type": "application/json", **headers})
            assert response.status_code == 400
            assert response.json()["errors"][0]["extensions"]["code"] == "NESTING_TOO_DEEP"


def test_json_just_over_the_depth_limit_is_refused_and_at_it_is_answered(server):
    alice = server.user("alice")
    # the request object and its variables are two of the levels
    variables = {"x": json.loads(nested(LIMITS.max_json_depth - 2))}
    query = "query($x: [[String]]) { __typename }"
    too_deep = {"x": json.loads(nested(LIMITS.max_json_depth - 1))}
    response = post_raw(server, json.dumps({"query": query, "variables": too_deep}),
                        alice.token)
    assert (response.status_code, codes(response)) == (400, ["NESTING_TOO_DEEP"])
    answer = post_raw(server, json.dumps({"query": query, "variables": variables}),
                      alice.token)
    # through to GraphQL, which finds $x unused
    assert (answer.status_code, codes(answer)) == (200, ["GRAPHQL_VALIDATION_FAILED"])


def test_deep_variables_in_a_get_query_string_are_refused(server):
    response = server.client.get("/graphql", params={
        "query": "query($x: String) { __typename }", "variables": '{"x": ' +
        nested(5000) + "}"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "NESTING_TOO_DEEP"


def test_the_answer_cache_never_fails_on_deeply_nested_variables():
    """The cache alone (no guard in front): its key is no longer a RecursionError."""
    asyncio.run(_deep_variables_through_the_cache())


async def _deep_variables_through_the_cache() -> None:
    passed = []

    async def app(scope, receive, send):
        passed.append((await receive())["body"])

    cache = GraphQLResponseCache(app, path="/graphql", snapshot=lambda: (1,),
                                 version_of=lambda snapshot, scope: snapshot,
                                 token_expiry=lambda token: None,
                                 authenticate=lambda token: ("u",), now=lambda: 0)
    for depth in (100_000, 5_000):
        body = ('{"query": "{ bots { edges { cursor } } }", "variables": {"x": '
                + nested(depth) + "}}").encode()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive(messages=messages):
            return messages.pop(0)

        scope = {"type": "http", "method": "POST", "path": "/graphql",
                 "headers": [(b"authorization", b"Bearer some.token")]}
        await cache(scope, receive, lambda message: None)
        assert passed[-1] == body  # handed on as it came, for the app to refuse


def test_three_hundred_chained_fragments_are_refused_with_a_code(server):
    response = server.client.post("/graphql", json={"query": chain(300)})
    error = response.json()["errors"][0]
    assert "recursion" not in error["message"]
    assert error["extensions"]["code"] in ("TOO_MANY_TOKENS", "FRAGMENTS_TOO_DEEP")


def test_a_chain_of_fragments_deeper_than_the_limit_is_refused(server):
    assert len(chain(150).split()) < LIMITS.max_document_tokens
    response = server.client.post("/graphql", json={"query": chain(150)})
    assert codes(response) == ["FRAGMENTS_TOO_DEEP"]
    deepest_allowed = server.client.post("/graphql", json={"query": chain(MAX_FRAGMENT_DEPTH)})
    assert deepest_allowed.json() == {"data": {"__typename": "Query"}}
    one_more = server.client.post("/graphql", json={"query": chain(MAX_FRAGMENT_DEPTH + 1)})
    assert codes(one_more) == ["FRAGMENTS_TOO_DEEP"]


def test_fragments_spreading_each_other_in_a_cycle_are_refused(server):
    document = ("query { ...A } fragment A on Query { ...B } "
                "fragment B on Query { __typename ...A }")
    assert codes(server.client.post("/graphql", json={"query": document})) == [
        "FRAGMENT_CYCLE"]


def test_fragments_fanning_out_to_too_many_fields_are_refused(server):
    """Few tokens, but each level spreads the next six times: 6**6 fields expanded."""
    levels = [f"fragment L{i} on Query {{ {' '.join([f'...L{i + 1}'] * 6)} }}"
              for i in range(6)]
    document = "\n".join(["query { ...L0 }", *levels, "fragment L6 on Query { __typename }"])
    assert MAX_EXPANDED_FIELDS < 6 ** 6
    assert codes(server.client.post("/graphql", json={"query": document})) == [
        "QUERY_TOO_LARGE"]


# --- every error answer names a code ---------------------------------------------------------

@pytest.mark.parametrize(("body", "status", "code"), [
    ("{not json", 400, "INVALID_JSON"),
    # the last of two keys would run, unlike what a proxy or log reading the first shows
    ('{"query": "{ __typename }", "query": "{ me { id } }"}', 400, "INVALID_JSON"),
    ('{"query": "query($n: Int!) { bots(first: $n) { pageInfo { hasNextPage } } }", '
     '"variables": {"n": 1, "n": 2}}', 400, "INVALID_JSON"),
    ('"not an object"', 400, "BAD_REQUEST"),
    ("42", 400, "BAD_REQUEST"),
    ("null", 400, "BAD_REQUEST"),
    ('[{"query": "{ __typename }"}]', 400, "BAD_REQUEST"),
    ('{"query": "{ portfolio { "}', 200, "GRAPHQL_PARSE_FAILED"),
    ('{"query": "{ noSuchField }"}', 200, "GRAPHQL_VALIDATION_FAILED"),
    ('{"variables": {}}', 400, "BAD_REQUEST"),
    ('{"query": "{ __typename }", "operationName": "Missing"}', 400, "BAD_REQUEST"),
    ('{"query": "query($n: Int!) { bots(first: $n) { pageInfo { hasNextPage } } }", '
     '"variables": {"n": "many"}}', 200, "BAD_USER_INPUT"),
    ('{"query": "{ me { id } }"}', 200, "AUTHENTICATION_REQUIRED"),
])
def test_every_error_answer_is_json_naming_a_code(server, body, status, code):
    response = post_raw(server, body, token=None)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert codes(response) == [code]


def test_methods_graphql_does_not_serve_are_answered_with_a_code(server):
    response = server.client.put("/graphql", json={"query": PORTFOLIO})
    assert response.status_code == 405
    assert codes(response) == ["METHOD_NOT_ALLOWED"]


def test_each_answer_carries_a_request_id_and_keeps_a_plain_one_given(server):
    given = server.client.post("/graphql", json={"query": "{ __typename }"},
                               headers={"X-Request-ID": "front-42"})
    assert given.headers["x-request-id"] == "front-42"
    odd = server.client.post("/graphql", json={"query": "{ __typename }"},
                             headers={"X-Request-ID": "bad id\twith tabs"})
    assert odd.headers["x-request-id"] not in ("", "bad id\twith tabs")


@pytest.mark.parametrize("variables", ['"a string"', "42", "[1]"])
def test_variables_that_are_not_an_object_are_answered_with_a_code(server, variables):
    for response in (
            server.client.get("/graphql", params={"query": "{ __typename }",
                                                  "variables": variables}),
            post_raw(server, f'{{"query": "{{ __typename }}", "variables": {variables}}}',
                     token=None)):
        assert response.status_code == 400
        assert codes(response) == ["BAD_REQUEST"]
