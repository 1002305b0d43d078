"""Funding plans on the running server, over HTTP: a bot needing more than its paper
account holds gets a plan and does not start; a deposit readies the plan; starting the
bot executes it. The wallet monitor runs on its schedule and ``/health`` shows its age;
``tradetape wallet plans|requirements`` beside the server says the same."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import pytest

from tests.e2e.conftest import CONFIG, TRADETAPE, new_user, server_env, wait_for

pytestmark = pytest.mark.timeout(150)

# (9000 + 500 + 1000 + 2000) × 1.001 = 12512.5 USDT at worst; the paper account has 10,000.
HUNGRY = {**CONFIG, "baseOrderQuote": "9000", "safetyOrderQuote": "500", "maxSafetyOrders": 3,
          "safetyVolumeScale": "2", "safetyStepScale": "1"}
CREATE = """mutation($config: DcaConfigInput!) { createBot(name: "hungry", config: $config) {
  __typename ... on Bot { id status } } }"""
START = """mutation($id: ID!) { startBot(id: $id) { __typename ... on Bot { status }
  ... on BotErrors { code errors { fundingPlanId } } } }"""
PLANS = "{ fundingPlans { edges { node { id botId status amount asset message } } } }"
PLAN = "query($id: ID!) { fundingPlan(id: $id) { status } }"
DEPOSIT = """mutation($a: ID!) { depositToPaperAccount(accountId: $a, asset: "USDT",
  amount: "2600") { __typename } }"""
REQUIREMENTS = "{ walletRequirements { accountId required available health bots { botId } } }"


def wallet_cli(*args: str) -> dict:
    done = subprocess.run([str(TRADETAPE), "wallet", *args, "--json"], capture_output=True,
                          text=True, env=server_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_deposit_readies_the_plan_and_starting_the_bot_executes_it(launch):
    server = launch(env={"TRADETAPE_WALLET_SECONDS": "1"})
    token = new_user(server, "funding@example.com")
    me = server.gql("{ me { id paperAccountId } }", token=token)["me"]
    bot = server.gql(CREATE, {"config": HUNGRY}, token)["createBot"]
    assert bot["status"] == "CREATED"
    [plan] = [e["node"] for e in server.gql(PLANS, token=token)["fundingPlans"]["edges"]]
    assert (plan["botId"], plan["status"], plan["asset"]) == (
        bot["id"], "awaiting_deposit", "USDT")
    assert Decimal(plan["amount"]) == Decimal("2512.5")
    refused = server.gql(START, {"id": bot["id"]}, token)["startBot"]
    assert refused["code"] == "FUNDING_PLAN_REQUIRED"
    assert refused["errors"][0]["fundingPlanId"] == plan["id"]

    cli = wallet_cli("plans", "--owner", me["id"], "--database", server.database_url)
    assert [(p["id"], p["status"]) for p in cli["plans"]] == [(plan["id"],
                                                               "awaiting_deposit")]

    deposited = server.gql(DEPOSIT, {"a": me["paperAccountId"]}, token)
    assert deposited["depositToPaperAccount"]["__typename"] == "ExchangeAccount"
    assert server.gql(PLAN, {"id": plan["id"]}, token)["fundingPlan"]["status"] == \
        "ready_to_execute"
    assert server.gql(START, {"id": bot["id"]}, token)["startBot"] == {
        "__typename": "Bot", "status": "RUNNING"}
    assert server.gql(PLAN, {"id": plan["id"]}, token)["fundingPlan"]["status"] == "executed"

    [row] = server.gql(REQUIREMENTS, token=token)["walletRequirements"]
    assert row["accountId"] == me["paperAccountId"] and row["bots"] == [{"botId": bot["id"]}]
    assert Decimal(row["required"]) <= Decimal("12512.5")
    wallet = wait_for("the wallet monitor's next run", lambda: (
        (h := server.health()["wallet"])["status"] == "green" and h["age_seconds"] < 5
        and h["accounts"] >= 1 and h))
    assert wallet["every_seconds"] == 1.0

    def requirements_cli() -> dict | None:
        report = wallet_cli("requirements", "--owner", me["id"], "--database",
                            server.database_url)
        return report if report["accounts"] and report["accounts"][0]["bots"] else None

    report = wait_for("the wallet view", requirements_cli, timeout=30)
    assert report["accounts"][0]["account_id"] == me["paperAccountId"]
