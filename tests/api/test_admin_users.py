"""Administrators list users and block or unblock them from GraphQL (the dashboard's admin
page): a blocked user's token stops working and their running bots pause; unblocked, they log
in again and their bots stay paused until they start them."""

from __future__ import annotations

from tests.api.conftest import PASSWORD

USERS = """query($after: String) { users(first: 2, after: $after) {
  edges { node { email blocked role } } pageInfo { hasNextPage endCursor } } }"""
BLOCK = """mutation($id: ID!) { blockUser(id: $id) { __typename ... on User { email blocked }
  ... on AdminErrors { code errors { field } } } }"""
UNBLOCK = BLOCK.replace("blockUser", "unblockUser")
BOT = "query($id: ID!) { bot(id: $id) { status } }"
START = "mutation($id: ID!) { startBot(id: $id) { ... on Bot { status } } }"


def test_an_admin_pages_through_every_user_oldest_first(server):
    admin = server.user("root", role="admin")
    server.user("alice")
    server.user("bob")
    first = server.gql(USERS, {"after": None}, admin.token)["users"]
    assert [e["node"]["email"] for e in first["edges"]] == ["root@example.com",
                                                            "alice@example.com"]
    assert first["edges"][0]["node"]["role"] == "ADMIN" and first["pageInfo"]["hasNextPage"]
    rest = server.gql(USERS, {"after": first["pageInfo"]["endCursor"]}, admin.token)["users"]
    assert [e["node"]["email"] for e in rest["edges"]] == ["bob@example.com"]
    assert rest["pageInfo"]["hasNextPage"] is False


def test_blocking_ends_the_sessions_and_pauses_the_bots_unblocking_lets_them_back(server):
    admin, alice = server.user("root", role="admin"), server.user("alice")
    bot = server.create_bot(alice)
    assert server.gql(START, {"id": bot}, alice.token)["startBot"]["status"] == "RUNNING"

    blocked = server.gql(BLOCK, {"id": alice.user_id}, admin.token)["blockUser"]
    assert blocked == {"__typename": "User", "email": "alice@example.com", "blocked": True}
    body = server.post("{ me { email } }", token=alice.token)
    assert body["errors"][0]["extensions"]["code"] in ("ACCOUNT_BLOCKED", "SESSION_REVOKED")
    assert server.gql(BOT, {"id": bot}, admin.token)["bot"]["status"] == "PAUSED"

    unblocked = server.gql(UNBLOCK, {"id": alice.user_id}, admin.token)["unblockUser"]
    assert unblocked["blocked"] is False
    server.runtime.identity.login(alice.email, PASSWORD)  # may log in again
    assert server.gql(BOT, {"id": bot}, admin.token)["bot"]["status"] == "PAUSED"


def test_an_unknown_or_malformed_id_is_a_typed_error(server):
    admin = server.user("root", role="admin")
    for user_id in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        answer = server.gql(BLOCK, {"id": user_id}, admin.token)["blockUser"]
        assert answer == {"__typename": "AdminErrors", "code": "NOT_FOUND",
                          "errors": [{"field": "id"}]}, user_id
