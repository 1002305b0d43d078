"""What tables and forms of a front end rely on: bots and deals count their rows and page
backwards; order and deal fields are enums whose values are the strings they always were;
every error type implements one ``Error`` interface."""

from __future__ import annotations

from datetime import timedelta

from tests.api.test_queries import traded

BOTS = """query($first: Int, $after: String, $last: Int, $before: String) {
  bots(first: $first, after: $after, last: $last, before: $before) {
    totalCount edges { node { name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


def test_bots_count_and_page_backwards_from_the_end(server):
    alice = server.user("alice")
    for n in range(5):
        server.create_bot(alice, f"bot {n}")
        server.clock.current += timedelta(seconds=1)
    last = server.gql(BOTS, {"last": 2}, alice.token)["bots"]
    assert last["totalCount"] == 5
    assert [e["node"]["name"] for e in last["edges"]] == ["bot 3", "bot 4"]  # oldest first
    assert last["pageInfo"]["hasPreviousPage"] is True
    before = server.gql(BOTS, {"last": 2, "before": last["pageInfo"]["startCursor"]},
                        alice.token)["bots"]
    assert [e["node"]["name"] for e in before["edges"]] == ["bot 1", "bot 2"]
    assert before["pageInfo"]["hasNextPage"] is True
    first = server.gql(BOTS, {"last": 2, "before": before["pageInfo"]["startCursor"]},
                       alice.token)["bots"]
    assert [e["node"]["name"] for e in first["edges"]] == ["bot 0"]
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert server.gql(BOTS, {}, server.user("bob").token)["bots"]["totalCount"] == 0


def test_deals_count_and_page_backwards(server):
    alice, bot_id = traded(server)
    query = """query($bot: ID, $last: Int, $before: String) {
      deals(botId: $bot, last: $last, before: $before) { totalCount
        edges { node { id status closeReason orders { side type status purpose } } }
        pageInfo { hasPreviousPage startCursor } } }"""
    newest = [e["node"]["id"] for e in server.gql(
        "{ deals(first: 100) { edges { node { id } } } }", token=alice.token)["deals"]["edges"]]
    collected, before = [], None
    while True:
        page = server.gql(query, {"bot": bot_id, "last": 2, "before": before},
                          alice.token)["deals"]
        assert page["totalCount"] == len(newest)
        collected = [e["node"]["id"] for e in page["edges"]] + collected
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert collected == newest
    closed = [e["node"] for e in server.gql(query, {"bot": bot_id, "last": 30},
                                            alice.token)["deals"]["edges"]
              if e["node"]["status"] == "CLOSED"]
    assert {d["closeReason"] for d in closed} <= {"take_profit", "stop_loss"}
    orders = [o for d in closed for o in d["orders"]]
    assert {o["side"] for o in orders} == {"buy", "sell"}
    assert {o["purpose"] for o in orders} >= {"base", "take_profit"}


def test_enum_names_are_the_strings_clients_already_read(server):
    enums = server.gql("""{ side: __type(name: "OrderSide") { enumValues { name } }
      status: __type(name: "OrderStatus") { enumValues { name } }
      reason: __type(name: "CloseReason") { enumValues { name } } }""")
    names = {k: {v["name"] for v in t["enumValues"]} for k, t in enums.items()}
    assert names["side"] == {"buy", "sell"}
    assert {"filled", "partially_filled", "cancelled"} <= names["status"]
    assert {"take_profit", "stop_loss", "manual"} <= names["reason"]


def test_every_error_type_implements_the_error_interface(server):
    implementing = server.gql("""{ __type(name: "Error") { possibleTypes { name } } }""")[
        "__type"]["possibleTypes"]
    assert {"BotErrors", "DealErrors", "SystemErrors", "AccountErrors", "AuthError",
            "BacktestErrors", "InputErrors", "FieldError"} <= {t["name"] for t in implementing}
    alice = server.user("alice")
    bot_id = server.create_bot(alice, "first")
    refused = server.gql("""mutation($id: ID!) { renameBot(id: $id, name: "") {
        ... on Error { code message field } } }""", {"id": bot_id}, alice.token)["renameBot"]
    assert refused["field"] == "name" and refused["code"] and refused["message"]


def test_event_types_have_an_enum_beside_their_strings(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice, "first")
    entries = server.gql("""query($id: ID!) { auditLog(filter: {aggregateId: $id}) {
        edges { node { aggregateType eventType kind } } } }""", {"id": bot_id},
                         alice.token)["auditLog"]["edges"]
    assert [(e["node"]["eventType"], e["node"]["kind"]) for e in entries] == [
        ("Created", "Bot_Created")]
    names = {v["name"] for v in server.gql('{ __type(name: "EventType") { enumValues { name } } }')[
        "__type"]["enumValues"]}
    assert {"Deal_Opened", "Order_Filled", "Bot_Renamed", "BacktestRequest_Made"} <= names
