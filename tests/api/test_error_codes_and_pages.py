"""Issue 14's API bugs: out-of-range page sizes are refused with INVALID_PAGE_SIZE on every
field that takes ``first``; every error a client can provoke (over HTTP, GET or POST, and
over the websocket) names an ``extensions.code``; an unknown operationName is a JSON
answer."""

from __future__ import annotations

import logging

import pytest
from starlette.websockets import WebSocketDisconnect

from projections.queries import MAX_PAGE
from tests.api.test_subscriptions import subscribe, websocket

pytestmark = pytest.mark.timeout(60)

SIZES_OUT_OF_RANGE = (0, -5, MAX_PAGE + 1, 1000)
SCHEMA_FIRSTS = """{ __schema { queryType { fields { name args { name }
  type { kind name ofType { kind name ofType { kind name ofType { name } } } } } } } }"""


def paged_fields(server) -> list[str]:
    fields = server.gql(SCHEMA_FIRSTS)["__schema"]["queryType"]["fields"]
    return sorted(f["name"] for f in fields if any(a["name"] == "first" for a in f["args"]))


def leaf_selection(name: str) -> str:
    """A minimal selection of each paged field (a connection's pageInfo, a list's rank)."""
    return "rank" if name == "leaderboard" else "pageInfo { hasNextPage }"


def test_the_schema_has_paged_fields_and_each_is_tested_below(server):
    assert paged_fields(server) == PAGED


PAGED = ["auditLog", "backtestRuns", "billingHistory", "bots", "deals", "drift",
         "exchangeAccounts", "fundingPlans", "leaderboard", "orders", "positions", "users",
         "webhooks"]


@pytest.mark.parametrize("field", PAGED)
@pytest.mark.parametrize("size", SIZES_OUT_OF_RANGE)
def test_an_out_of_range_page_size_is_refused_with_a_code(server, field, size):
    alice = server.user("alice")
    server.create_bot(alice)  # something to return, had the size been accepted
    literal = server.post(f"{{ {field}(first: {size}) {{ {leaf_selection(field)} }} }}",
                          token=alice.token)
    variable = server.post(f"query($n: Int!) {{ {field}(first: $n) "
                           f"{{ {leaf_selection(field)} }} }}", {"n": size}, alice.token)
    for body in (literal, variable):
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"] == {"code": "INVALID_PAGE_SIZE", "field": field,
                                       "argument": "first", "min": 1, "max": MAX_PAGE}


def test_sizes_inside_the_range_and_a_null_size_still_answer(server):
    alice = server.user("alice")
    for index in range(3):
        server.create_bot(alice, f"bot-{index}")
    edges = "{ edges { node { name } } }"
    assert len(server.gql(f"{{ bots(first: 1) {edges} }}", token=alice.token)
               ["bots"]["edges"]) == 1
    assert len(server.gql(f"{{ bots(first: {MAX_PAGE}) {edges} }}", token=alice.token)
               ["bots"]["edges"]) == 3
    assert len(server.gql(f"query($n: Int) {{ bots(first: $n) {edges} }}", {"n": None},
                          alice.token)["bots"]["edges"]) == 3


def test_a_page_size_in_a_fragment_is_checked_too(server):
    alice = server.user("alice")
    body = server.post("query { ...Mine } fragment Mine on Query { "
                       "deals(first: 0) { pageInfo { hasNextPage } } }", token=alice.token)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_PAGE_SIZE"]



@pytest.mark.parametrize("field", PAGED)
def test_an_out_of_range_default_of_a_variable_left_out_is_refused_too(server, field):
    """``query($n: Int = -5)`` sent without ``n`` runs the field with -5: refused as the
    literal is (it used to answer an odd page: no edges, or hasNextPage with none)."""
    alice = server.user("alice")
    server.create_bot(alice)
    body = server.post(f"query($n: Int = -5) {{ {field}(first: $n) "
                       f"{{ {leaf_selection(field)} }} }}", token=alice.token)
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INVALID_PAGE_SIZE", "field": field,
                                   "argument": "first", "min": 1, "max": MAX_PAGE}
    assert error["message"] == (f"{field}(first: -5) is out of range: a page holds 1 to "
                                f"{MAX_PAGE} items")


def test_a_variable_sent_overrides_its_default_and_a_null_sent_stays_null(server):
    alice = server.user("alice")
    for index in range(3):
        server.create_bot(alice, f"bot-{index}")
    query = "query($n: Int = -5) { bots(first: $n) { edges { node { name } } } }"
    assert len(server.gql(query, {"n": 2}, alice.token)["bots"]["edges"]) == 2
    assert len(server.gql(query, {"n": None}, alice.token)["bots"]["edges"]) == 3
    fine = "query($n: Int = 1) { bots(first: $n) { edges { node { name } } } }"
    assert len(server.gql(fine, token=alice.token)["bots"]["edges"]) == 1

# --- every error names a code ------------------------------------------------------------

BAD_POSTS = [
    {"query": "{ bots(first: 0) { pageInfo { hasNextPage } } }"},
    {"query": "{ noSuchField }"},
    {"query": "mutation { noSuchMutation }"},
    {"query": "subscription { noSuchSubscription }"},
    {"query": "{ __typename"},
    {"query": "{ bots(first: \"ten\") { pageInfo { hasNextPage } } }"},
    {"query": "query($n: Int!) { bots(first: $n) { pageInfo { hasNextPage } } }"},
    {"query": "query($n: Int!) { bots(first: $n) { pageInfo { hasNextPage } } }",
     "variables": {"n": "ten"}},
    {"query": "query($n: Undefined) { __typename }"},
    {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"},
    {"query": "{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }"},
    {"query": "query A { __typename }", "operationName": "B"},
    {"query": "query A { __typename } query A { __typename }"},
    {"query": "{ portfolio(asOf: \"2999-01-01T00:00:00Z\") { realizedPnl } }"},
    {"query": "{ portfolio(asOf: \"yesterday\") { realizedPnl } }"},
    {"query": "{ auditLog(after: \"not-a-cursor\") { pageInfo { hasNextPage } } }"},
    {"query": "mutation { startBot(id: \"nope\") { noSuchField } }"},
    {"query": "query { ...F } fragment F on Query { ...F }"},
    {"variables": {}},
    {"query": ["not", "a", "string"]},
    "not an object",
]
BAD_GETS = ["/graphql?query=mutation%7BstartBot(id:%22x%22)%7B__typename%7D%7D",
            "/graphql?query=%7B__typename%7D&operationName=Missing",
            "/graphql?query=%7BnoSuchField%7D",
            "/graphql?query=%7Bbots(first:0)%7BpageInfo%7BhasNextPage%7D%7D%7D"]


def assert_every_error_has_a_code(response, sent) -> int:
    assert response.headers["content-type"].startswith("application/json"), (sent, response)
    errors = response.json().get("errors")
    assert errors, (sent, response.text)
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert isinstance(code, str) and code, (sent, error)
    return len(errors)


@pytest.mark.parametrize("token", ["valid", "forged", None])
def test_every_error_of_a_batch_of_bad_requests_names_a_code(server, token):
    alice = server.user("alice")
    bearer = {"valid": alice.token, "forged": "forged.token.value", None: None}[token]
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    errors = 0
    for sent in BAD_POSTS:
        errors += assert_every_error_has_a_code(
            server.client.post("/graphql", json=sent, headers=headers), sent)
    for path in BAD_GETS:
        errors += assert_every_error_has_a_code(server.client.get(path, headers=headers),
                                                path)
    assert errors >= len(BAD_POSTS) + len(BAD_GETS)


def test_every_error_over_the_websocket_names_a_code(server):
    alice = server.user("alice")
    bad = ["subscription { noSuchSubscription }",
           "subscription($id: ID!) { botEvents(botId: $id) { type } }",
           "subscription($id: ID!) { botEvents(botId: $id) { type } }",
           "query { bots(first: 0) { pageInfo { hasNextPage } } }"]
    with websocket(server, alice.token) as ws:
        for index, query in enumerate(bad):
            subscribe(ws, query, {"id": ["a", "list"]} if index == 2 else None, id=str(index))
            message = ws.receive_json()
            assert message["type"] in ("error", "next"), message
            errors = (message["payload"] if message["type"] == "error"
                      else message["payload"]["errors"])
            assert errors, message
            for error in errors:
                assert (error.get("extensions") or {}).get("code"), (query, error)


def test_a_subscription_that_does_not_parse_closes_the_socket_4400_without_a_fault(
        server, caplog):
    """graphql-transport-ws has no error object for it: the socket closes 4400 with the
    syntax error as its reason (it used to complete silently, a traceback in the log)."""
    alice = server.user("alice")
    with websocket(server, alice.token) as ws:
        subscribe(ws, "subscription { portfolioUpdates { ")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400
    assert closed.value.reason.startswith("Syntax Error")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_unknown_operation_name_is_a_json_answer_with_a_code(server):
    for response in (
            server.client.post("/graphql", json={"query": "query A { __typename }",
                                                 "operationName": "B"}),
            server.client.get("/graphql?query=query%20A%7B__typename%7D&operationName=B")):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        [error] = response.json()["errors"]
        assert error["message"] == 'Unknown operation named "B".'
        assert error["extensions"]["code"] == "BAD_REQUEST"
