"""Funding plans over GraphQL: a bot its paper account cannot cover is created, not
started, with a plan; a deposit readies the plan; starting the bot executes it. Wallet
requirements as a projection: a rebuild gives the same, ``asOf`` what was true then."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from domain.accounts import AccountKind
from projections.balances import Balances
from projections.runner import view_as_of
from projections.wallet import WalletRequirements, wallet_requirements
from tests.api.conftest import served

pytestmark = pytest.mark.timeout(120)

# Worst case: (9000 + 500 + 1000 + 2000) quote, plus 0.1 % fees = 12512.5 USDT; the paper
# account starts with 10,000.
HUNGRY = {"baseOrderQuote": "9000", "safetyOrderQuote": "500", "maxSafetyOrders": 3,
          "safetyVolumeScale": "2", "safetyStepScale": "1"}
WORST_CASE = Decimal("12512.5")
PLAN_FIELDS = """id botId accountId asset required available amount transferFrom
  transferAmount message status reason"""
PLANS = (f"query($s: String) {{ fundingPlans(status: $s) {{ edges {{ node {{ {PLAN_FIELDS} }} "
         "} } }")
BOT_PLAN = "query($id: ID!) { bot(id: $id) { status fundingPlan { id status } } }"
PLAN = f"query($id: ID!) {{ fundingPlan(id: $id) {{ {PLAN_FIELDS} }} }}"
START = """mutation($id: ID!) { startBot(id: $id) { __typename ... on Bot { id status }
  ... on BotErrors { code message errors { code fundingPlanId } } } }"""
MOVE = """mutation($a: ID!, $n: String!) {{ {}(accountId: $a, asset: "USDT", amount: $n) {{
  __typename ... on FundingErrors {{ code }} }} }}"""
CANCEL = """mutation($id: ID!) { cancelFundingPlan(id: $id) { __typename
  ... on FundingPlan { status reason } ... on FundingErrors { code } } }"""
REQUIREMENTS = """query($at: DateTime) { walletRequirements(asOf: $at) { accountId kind asset
  required available surplusDeficit health bots { botId name required } } }"""


def plans(server, account, status=None) -> list[dict]:
    edges = server.gql(PLANS, {"s": status}, account.token)["fundingPlans"]["edges"]
    return [e["node"] for e in edges]


def move(server, account, mutation: str, amount: str, to: str | None = None) -> dict:
    return server.gql(MOVE.format(mutation), {"a": to or account.paper_account_id,
                                              "n": amount}, account.token)[mutation]


def requirement(server, account, at: str | None = None) -> dict:
    rows = server.gql(REQUIREMENTS, {"at": at}, account.token)["walletRequirements"]
    [row] = [r for r in rows if r["accountId"] == account.paper_account_id]
    return row


def test_a_bot_needing_more_than_its_paper_account_holds_waits_for_a_deposit(server):
    deposit_journey(server)


@pytest.mark.postgres
def test_the_same_on_postgres(postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        deposit_journey(server)
        runtime = server.runtime
        alice = runtime.identity.find_user("alice@example.com")
        live = wallet_requirements(runtime.read_models.store, str(alice.id))
        rebuilt = view_as_of(runtime.trading, [Balances, WalletRequirements])
        try:
            assert wallet_requirements(rebuilt.store, str(alice.id)) == live
        finally:
            rebuilt.store.close()


def deposit_journey(server) -> None:
    alice = server.user("alice")
    bot = server.create_bot(alice, "hungry", **HUNGRY)  # created all the same
    [plan] = plans(server, alice)
    assert (plan["botId"], plan["accountId"], plan["asset"]) == (
        bot, alice.paper_account_id, "USDT")
    assert plan["status"] == "awaiting_deposit"
    assert Decimal(plan["required"]) == WORST_CASE
    assert Decimal(plan["available"]) == Decimal(10000)
    assert Decimal(plan["amount"]) == Decimal("2512.5")
    assert plan["transferFrom"] is None  # no other account holds USDT
    assert "needs 12512.5" in plan["message"] and "deposit 2512.5 USDT" in plan["message"]
    shown = server.gql(BOT_PLAN, {"id": bot}, alice.token)["bot"]
    assert shown == {"status": "CREATED", "fundingPlan": {"id": plan["id"],
                                                          "status": "awaiting_deposit"}}

    refused = server.gql(START, {"id": bot}, alice.token)["startBot"]
    assert refused["code"] == "FUNDING_PLAN_REQUIRED"
    assert refused["errors"][0]["fundingPlanId"] == plan["id"]
    assert plan["id"] in refused["message"]
    assert server.runtime.trading.get_bot(UUID(bot)).status.value == "created"

    assert move(server, alice, "depositToPaperAccount", "2000")["__typename"] == \
        "ExchangeAccount"
    assert server.gql(PLAN, {"id": plan["id"]}, alice.token)["fundingPlan"]["status"] == \
        "awaiting_deposit"  # 12000 does not cover 12512.5
    move(server, alice, "depositToPaperAccount", "600")
    ready = server.gql(PLAN, {"id": plan["id"]}, alice.token)["fundingPlan"]
    assert ready["status"] == "ready_to_execute" and Decimal(ready["available"]) == 12600

    assert server.gql(START, {"id": bot}, alice.token)["startBot"] == {
        "__typename": "Bot", "id": bot, "status": "RUNNING"}
    assert server.gql(PLAN, {"id": plan["id"]}, alice.token)["fundingPlan"]["status"] == \
        "executed"
    assert server.gql(BOT_PLAN, {"id": bot}, alice.token)["bot"]["fundingPlan"][
        "status"] == "executed"
    # The running bot may spend 12512.5 of the 12600: a small one (225.225) is short now.
    small = server.create_bot(alice, "small")
    [short] = plans(server, alice, "awaiting_deposit")
    assert short["botId"] == small and Decimal(short["available"]) == Decimal("87.5")
    assert Decimal(short["amount"]) == Decimal("137.725")


def test_starting_a_bot_the_account_no_longer_covers_opens_a_plan(server):
    alice = server.user("alice")
    bot = server.create_bot(alice, "fits", **{**HUNGRY, "baseOrderQuote": "6000"})  # 9509.5
    assert plans(server, alice) == []
    assert move(server, alice, "withdrawFromPaperAccount", "20000")["code"] == \
        "INSUFFICIENT_FUNDS"
    move(server, alice, "withdrawFromPaperAccount", "1000")
    refused = server.gql(START, {"id": bot}, alice.token)["startBot"]
    assert refused["code"] == "INSUFFICIENT_FUNDS_EXCHANGE"
    [plan] = plans(server, alice)
    assert refused["errors"][0]["fundingPlanId"] == plan["id"]
    assert Decimal(plan["amount"]) == Decimal("509.5")
    again = server.gql(START, {"id": bot}, alice.token)["startBot"]
    assert again["code"] == "FUNDING_PLAN_REQUIRED"
    assert again["errors"][0]["fundingPlanId"] == plan["id"]  # the same plan, not another


def test_the_other_running_bots_needs_count_against_the_account(server):
    alice = server.user("alice")
    first = server.create_bot(alice, "first", **{**HUNGRY, "baseOrderQuote": "3000"})  # 6506.5
    server.start_bot(alice, first)
    server.create_bot(alice, "second", **{**HUNGRY, "baseOrderQuote": "3000"})
    [plan] = plans(server, alice)
    assert Decimal(plan["available"]) == Decimal("3493.5")  # 10000 - 6506.5
    assert Decimal(plan["amount"]) == Decimal("3013")
    row = requirement(server, alice)
    assert (Decimal(row["required"]), Decimal(row["available"])) == (Decimal("6506.5"), 10000)
    assert row["health"] == "ok" and [b["name"] for b in row["bots"]] == ["first"]


def test_a_plan_suggests_a_transfer_from_another_account_with_funds(server):
    alice = server.user("alice")
    trading = server.runtime.trading
    other = trading.open_account(owner_id=alice.user_id, exchange="paper", quote_asset="USDT",
                                 kind=AccountKind.PAPER)
    trading.deposit(other, "USDT", Decimal(1000))
    server.create_bot(alice, "hungry", **HUNGRY)
    [plan] = plans(server, alice)
    assert plan["transferFrom"] == str(other)
    assert Decimal(plan["transferAmount"]) == Decimal(1000)  # all it has, of 2512.5
    assert f"transfer 1000 USDT from account {other}" in plan["message"]


def test_plans_are_cancelled_by_their_owner_or_a_stop_and_hidden_from_others(server):
    alice, bob = server.user("alice"), server.user("bob")
    bot = server.create_bot(alice, "hungry", **HUNGRY)
    [plan] = plans(server, alice)
    assert plans(server, bob) == []
    assert server.gql(PLAN, {"id": plan["id"]}, bob.token)["fundingPlan"] is None
    assert server.gql(CANCEL, {"id": plan["id"]}, bob.token)["cancelFundingPlan"] == {
        "__typename": "FundingErrors", "code": "NOT_FOUND"}
    assert move(server, bob, "depositToPaperAccount", "5", to=alice.paper_account_id)[
        "code"] == "NOT_FOUND"
    assert server.gql(CANCEL, {"id": plan["id"]}, alice.token)["cancelFundingPlan"] == {
        "__typename": "FundingPlan", "status": "cancelled", "reason": "cancelled by its owner"}
    assert server.gql(CANCEL, {"id": plan["id"]}, alice.token)["cancelFundingPlan"][
        "code"] == "FUNDING_PLAN_CLOSED"
    server.gql(START, {"id": bot}, alice.token)  # a new plan for the same need
    [_, fresh] = plans(server, alice)
    server.gql("mutation($id: ID!) { stopBot(id: $id) { __typename } }", {"id": bot},
               alice.token)
    assert server.gql(PLAN, {"id": fresh["id"]}, alice.token)["fundingPlan"]["reason"] == \
        "the bot was stopped"


def test_requirements_rebuild_the_same_and_as_of_answers_the_past(server):
    alice = server.user("alice")
    server.create_bot(alice, "hungry", **HUNGRY)
    time.sleep(0.05)
    before_deposit = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    move(server, alice, "depositToPaperAccount", "3000")
    bot = plans(server, alice)[0]["botId"]
    server.start_bot(alice, bot)
    for _ in range(5):
        server.step(60)  # deals open: the requirement shrinks by what the deal spent

    now = requirement(server, alice)
    assert Decimal(now["available"]) <= 13000 and now["bots"][0]["botId"] == bot
    assert Decimal(now["required"]) < WORST_CASE  # its deal spent some already
    assert Decimal(now["surplusDeficit"]) == Decimal(now["available"]) - Decimal(
        now["required"])
    funding = server.runtime.wallet_monitor.funding  # the rule and the view agree
    assert funding.committed(alice.paper_account_id, "USDT", owner_id=alice.user_id) == \
        Decimal(now["required"])
    then = requirement(server, alice, before_deposit)
    assert (Decimal(then["required"]), Decimal(then["available"])) == (0, 10000)
    assert then["bots"] == [] and then["health"] == "ok"

    live = server.runtime.read_models.store
    rebuilt = view_as_of(server.runtime.trading, [Balances, WalletRequirements])
    try:
        assert wallet_requirements(rebuilt.store, alice.user_id) == wallet_requirements(
            live, alice.user_id)
    finally:
        rebuilt.store.close()


def test_the_wallet_monitor_records_changed_balances_only_and_health_shows_its_age(server):
    alice = server.user("alice")
    monitor, trading = server.runtime.wallet_monitor, server.runtime.trading
    assert server.runtime.health()["wallet"]["status"] == "amber"  # not run yet
    assert monitor.run(server.clock.now()) == 1  # alice's 10,000 USDT, first seen
    assert monitor.run(server.clock.now()) == 0  # nothing changed
    account = trading.get_account(UUID(alice.paper_account_id))
    assert account.observed == {"USDT": (Decimal(10000), Decimal(0))}
    bot = server.create_bot(alice)
    server.start_bot(alice, bot)
    server.step(60)
    assert monitor.run(server.clock.now()) >= 1  # the deal's buys moved USDT and BTC
    assert server.runtime.health()["wallet"]["status"] == "green"
    # A paper account's observations move nothing: its balances are its own events'.
    balances = server.gql("{ portfolio { balances { asset total } } }", token=alice.token)
    observed = trading.get_account(UUID(alice.paper_account_id)).observed
    assert {b["asset"]: Decimal(b["total"]) for b in balances["portfolio"]["balances"]} == {
        asset: free + locked for asset, (free, locked) in observed.items()}
    server.clock.current = server.clock.now().replace(minute=59)
    wallet = server.runtime.health()["wallet"]
    assert wallet["status"] == "amber" and wallet["age_seconds"] > 600  # late: 2 periods


def test_the_wallet_monitors_start_round_loading_accounts_together_records_the_same(server):
    """The start's round loads every account in a few queries; it records what a round
    loading them one at a time records, and a changed account is still seen changed."""
    alice, bob = server.user("alice"), server.user("bob")
    monitor, trading = server.runtime.wallet_monitor, server.runtime.trading
    assert monitor.run(server.clock.now(), load_together=True) == 2  # both, first seen
    assert monitor.run(server.clock.now(), load_together=True) == 0
    bot = server.create_bot(alice)
    server.start_bot(alice, bot)
    server.step(60)
    assert monitor.run(server.clock.now(), load_together=True) >= 1  # alice's buys only
    assert monitor.run(server.clock.now()) == 0  # one at a time: nothing left to record
    for user in (alice, bob):
        account = trading.get_account(UUID(user.paper_account_id))
        wallet = server.runtime.paper.paper_wallet(user.paper_account_id)
        assert account.observed == {a: (b.free, b.locked) for a, b in wallet.items()
                                    if b.free + b.locked or a in account.observed}
