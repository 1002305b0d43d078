"""Schema-wide rules: every root field declares its permissions, the public ones are exactly
those meant to be, names outside clients rely on are there, and abusive operations are
rejected before they run."""

from __future__ import annotations

import pytest
from strawberry.permission import BasePermission

from api.graphql.limits import MAX_COST
from api.graphql.permissions import IsAdmin, IsAuthenticated, Public
from api.graphql.schema import build_schema

ROOTS = ("Query", "Mutation", "Subscription")
PUBLIC = {"register", "verifyEmail", "login", "refresh", "logout", "dcaPlan", "leaderboard",
          "systemStatus", "resendVerification", "requestPasswordReset", "resetPassword",
          "plans"}
ADMIN = {"emergencyStop", "emergencyResume", "definePlan", "revenue", "refundPayment",
         "unsoldSubscriptions",
         "systemEmergencyStop", "users", "blockUser", "unblockUser", "projections",
         "projectionRebuild", "rebuildProjections", "projectionRebuildProgress"}


def root_fields() -> list[tuple[str, str, list[type[BasePermission]]]]:
    schema = build_schema()
    found = []
    for root in ROOTS:
        for f in schema.get_type_by_name(root).fields:
            name = schema.config.name_converter.get_graphql_name(f)
            found.append((root, name, list(f.permission_classes)))
    return found


@pytest.mark.parametrize(("root", "name", "permissions"), root_fields(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_root_field_declares_permissions(root, name, permissions):
    assert permissions, f"{root}.{name} declares no permission class"


def test_public_fields_are_exactly_the_ones_meant_to_be_public():
    public = {name for _, name, perms in root_fields() if Public in perms}
    assert public == PUBLIC
    for _, name, perms in root_fields():
        if name not in PUBLIC:
            assert IsAuthenticated in perms, name
        assert any(issubclass(p, IsAdmin) for p in perms) == (name in ADMIN), name


def test_names_outside_clients_rely_on_are_kept():
    sdl = build_schema().as_str()
    for text in (
        "login(email: String!, password: String!): AuthResult!",
        "union AuthResult = AuthPayload | AuthError",
        "createBot(name: String!, config: DcaConfigInput!, exchangeAccountId: ID = null): "
        "BotResult!",
        "union BotResult = Bot | BotErrors",
        "bot(id: ID!): Bot\n",
        # arguments added later (last, before) keep every existing call valid
        "bots(first: Int = 50, after: String = null, last: Int = null, before: String = "
        "null): BotConnection!",
        "portfolio(asOf: DateTime = null): Portfolio!",
        "botEvents(botId: ID!): BotEvent!",
        "portfolioUpdates: Portfolio!",
        "stopBot(id: ID!, closeDeal: Boolean = false): BotResult!",
        "scalar Decimal",
    ):
        assert text in sdl, text
    for type_name, fields in {
        "AuthPayload": ["accessToken", "refreshToken", "expiresAt", "user"],
        "Bot": ["id", "name", "status", "dealsOpened", "dealsClosed", "dealsCancelled",
                "openDealId", "openDeal", "pnl"],
        "BotConnection": ["edges", "pageInfo"],
        "BotEdge": ["node", "cursor"],
        "PageInfo": ["hasNextPage", "endCursor"],
        "Portfolio": ["realizedPnl", "unrealizedPnl", "fees", "dealsClosed", "winRate",
                      "balances"],
        "DcaConfigInput": ["pair", "baseOrderQuote", "safetyOrderQuote", "maxSafetyOrders",
                           "priceDeviationPct", "safetyVolumeScale", "safetyStepScale",
                           "takeProfitPct", "stopLossPct", "trailingTakeProfitPct",
                           "cooldownSeconds"],
    }.items():
        body = sdl[sdl.index(f" {type_name} {{"):]
        body = body[:body.index("}")]
        for name in fields:
            assert f"  {name}" in body, f"{type_name}.{name}"


def test_graphiql_is_served_on_get(server):
    response = server.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


DEEP = '{ deal(id: "x") ' + "{ bot { openDeal " * 6 + "{ id }" + " } }" * 6 + " }"


def test_a_query_nested_too_deep_is_rejected_with_a_clear_error(server):
    alice = server.user("alice")
    body = server.post(DEEP, token=alice.token)
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


def test_a_query_too_costly_is_rejected_before_it_runs(server):
    alice = server.user("alice")
    costly = ("{ bots(first: 100) { edges { node { openDeal { orders { id price amount } "
              "fills { price amount } } config { pair } } } } }")
    body = server.post(costly, token=alice.token)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"] > MAX_COST
    assert "too costly" in error["message"]


def test_cost_counts_first_given_as_a_variable(server):
    alice = server.user("alice")
    query = ("query($n: Int) { bots(first: $n) { edges { node { openDeal { orders { id "
             "price amount side status } } } } } }")
    assert server.post(query, {"n": 5}, alice.token).get("errors") is None
    body = server.post(query, {"n": 100}, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    # validation is cached by document; the cost is not
    assert server.post(query, {"n": 5}, alice.token).get("errors") is None


def test_many_aliases_of_a_cheap_field_are_refused(server):
    alice = server.user("alice")
    query = "{ " + " ".join(f"a{i}: portfolio {{ fees }}" for i in range(40)) + " }"
    body = server.post(query, token=alice.token)
    assert body.get("data") is None and body["errors"]


def test_an_ordinary_page_of_bots_with_their_open_deals_is_within_the_limits(server):
    alice = server.user("alice")
    query = ("{ bots(first: 50) { edges { cursor node { id name status openDeal { id units "
             "averageEntry takeProfitPrice } pnl { realizedPnl } } } pageInfo { hasNextPage "
             "endCursor } } }")
    assert server.gql(query, token=alice.token)["bots"]["edges"] == []
