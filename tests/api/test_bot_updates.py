"""updateBot, renameBot and deleteBot as a dashboard's edit form and delete button use
them: every change is an event of the bot, the ladder of an open deal cannot change, names
stay unique, and a deleted bot keeps its history but leaves every list."""

from __future__ import annotations

from tests.api.conftest import CONFIG

RESULT = """__typename ... on Bot { id name status archived configVersion
  config { takeProfitPct maxSafetyOrders } }
  ... on BotErrors { code errors { code field } }"""
UPDATE = f"""mutation($id: ID!, $input: UpdateBotInput!) {{
  updateBot(id: $id, input: $input) {{ {RESULT} }} }}"""
RENAME = f"""mutation($id: ID!, $name: String!) {{ renameBot(id: $id, name: $name) {{
  {RESULT} }} }}"""
DELETE = f"""mutation($id: ID!, $close: Boolean) {{ deleteBot(id: $id, closeDeal: $close) {{
  {RESULT} }} }}"""
HISTORY = """query($id: ID!) { auditLog(filter: {aggregateId: $id}) { edges { node {
  eventType } } } }"""


def test_update_renames_and_reconfigures_as_events_of_the_bot(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    updated = server.gql(UPDATE, {"id": bot_id, "input": {
        "name": "steady", "config": {**CONFIG, "takeProfitPct": "0.4"}}},
        alice.token)["updateBot"]
    assert (updated["name"], updated["configVersion"]) == ("steady", 2)
    assert updated["config"]["takeProfitPct"] == "0.4"
    kinds = [e["node"]["eventType"] for e in server.gql(
        HISTORY, {"id": bot_id}, alice.token)["auditLog"]["edges"]]
    assert kinds[:2] == ["ConfigEdited", "Renamed"]  # newest first
    again = server.gql(UPDATE, {"id": bot_id, "input": {"name": "steady"}},
                       alice.token)["updateBot"]
    assert again["configVersion"] == 2  # nothing changed: nothing recorded


def test_an_open_deals_ladder_cannot_change_but_its_targets_can(server):
    alice = server.user("alice")
    bot_id, _ = server.running_deal(alice)
    refused = server.gql(UPDATE, {"id": bot_id, "input": {"name": "renamed too", "config": {
        **CONFIG, "maxSafetyOrders": 3}}}, alice.token)["updateBot"]
    assert refused["code"] == "DEAL_OPEN"
    assert refused["errors"] == [{"code": "DEAL_OPEN", "field": "maxSafetyOrders"}]
    bot = server.gql("query($id: ID!) { bot(id: $id) { name configVersion } }",
                     {"id": bot_id}, alice.token)["bot"]
    assert bot == {"name": "scalper", "configVersion": 1}  # nothing half-done
    allowed = server.gql(UPDATE, {"id": bot_id, "input": {"config": {
        **CONFIG, "takeProfitPct": "0.3"}}}, alice.token)["updateBot"]
    assert allowed["config"]["takeProfitPct"] == "0.3"


def test_names_stay_unique_among_bots_not_stopped(server):
    alice, bob = server.user("alice"), server.user("bob")
    first = server.create_bot(alice, "first")
    second = server.create_bot(alice, "second")
    clash = server.gql(RENAME, {"id": second, "name": " First "}, alice.token)["renameBot"]
    assert clash["code"] == "BOT_NAME_DUPLICATE"
    assert server.gql(RENAME, {"id": second, "name": ""}, alice.token)["renameBot"][
        "errors"][0]["field"] == "name"
    assert server.gql(RENAME, {"id": first, "name": "x"}, bob.token)["renameBot"][
        "code"] == "NOT_FOUND"
    renamed = server.gql(RENAME, {"id": first, "name": "third"}, alice.token)["renameBot"]
    assert renamed["name"] == "third"
    server.create_bot(alice, "first")  # the old name is free again


def test_a_deleted_bot_keeps_its_history_and_leaves_the_lists(server):
    alice = server.user("alice")
    bot_id, deal_id = server.running_deal(alice)
    refused = server.gql(DELETE, {"id": bot_id}, alice.token)["deleteBot"]
    assert refused["code"] == "DEAL_OPEN"
    deleted = server.gql(DELETE, {"id": bot_id, "close": True}, alice.token)["deleteBot"]
    assert (deleted["status"], deleted["archived"]) == ("STOPPED", True)
    bots = server.gql("{ bots { edges { node { id } } } }", token=alice.token)["bots"]
    assert bots["edges"] == []
    kept = server.gql("query($id: ID!) { bot(id: $id) { archived dealsClosed } "
                      "deal(id: $deal) { status } }".replace("$id: ID!", "$id: ID!, $deal: ID!"),
                      {"id": bot_id, "deal": deal_id}, alice.token)
    assert kept["bot"] == {"archived": True, "dealsClosed": 1}
    assert kept["deal"]["status"] == "CLOSED"
    server.create_bot(alice, "scalper")  # its name is free
    again = server.gql(RENAME, {"id": bot_id, "name": "back"}, alice.token)["renameBot"]
    assert again["code"] == "BOT_DELETED"
