"""GraphQL: addExchangeAccount, exchangeAccounts, removeExchangeAccount over HTTP, against a
server whose sandbox host is the local exchange simulator; and the allow-live rule at
startBot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from uuid import UUID

import pytest

from domain.accounts import AccountKind, ExchangeAccount, SealedKeys
from tests.api.conftest import CREATE_BOT, START_BOT, Server, served
from tests.exchange_simulator import running_simulator

ADD = """mutation($input: AddExchangeAccountInput!) {
  addExchangeAccount(input: $input) {
    __typename
    ... on ExchangeAccount { id name exchange sandbox kind status lastSyncAt
                             balances { asset free locked total } }
    ... on AccountErrors { code message errors { code field } }
  }
}"""
LIST = """query($first: Int, $after: String) {
  exchangeAccounts(first: $first, after: $after) {
    edges { cursor node { id name exchange sandbox kind status lastSyncAt
                          balances { asset free } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
REMOVE = """mutation($id: ID!) {
  removeExchangeAccount(id: $id) {
    __typename ... on ExchangeAccount { id } ... on AccountErrors { code message }
  }
}"""


@pytest.fixture
def sim() -> Iterator:
    with running_simulator(balances={"USDT": "1234.5", "BTC": "0.5"}) as handle:
        yield handle


@pytest.fixture
def server(sim, tmp_path, monkeypatch) -> Iterator[Server]:
    monkeypatch.setenv("TRADETAPE_SANDBOX_HOST", sim.url)
    with served(f"sqlite:///{tmp_path / 'server.sqlite'}", monkeypatch) as server:
        yield server


def keys(sim, **changes) -> dict:
    return {"exchange": "binance", "sandbox": True, "apiKey": sim.api_key,
            "secret": sim.secret, "name": "testnet", **changes}


def test_right_keys_add_a_sandbox_account_with_its_balances(server, sim) -> None:
    alice = server.user("alice")
    added = server.gql(ADD, {"input": keys(sim)}, alice.token)["addExchangeAccount"]
    assert {k: added[k] for k in ("__typename", "name", "exchange", "sandbox", "kind",
                                  "status")} == {
        "__typename": "ExchangeAccount", "name": "testnet", "exchange": "binance",
        "sandbox": True, "kind": "LIVE", "status": "ok"}
    assert added["lastSyncAt"].startswith("2026-03-01T12:00:00")
    # As Binance writes them: 8 decimals, kept exactly.
    assert {b["asset"]: b["free"] for b in added["balances"]} == {
        "USDT": "1234.50000000", "BTC": "0.50000000"}
    edges = server.gql(LIST, {}, alice.token)["exchangeAccounts"]["edges"]
    assert [(e["node"]["kind"], e["node"]["sandbox"]) for e in edges] == [
        ("PAPER", False), ("LIVE", True)]
    assert edges[0]["node"]["id"] == alice.paper_account_id
    assert {b["asset"]: b["free"] for b in edges[0]["node"]["balances"]} == {
        "USDT": "10000"}


def test_wrong_secret_is_auth_failed_and_nothing_is_added(server, sim) -> None:
    alice = server.user("alice")
    refused = server.gql(ADD, {"input": keys(sim, secret="wrong-secret-0123456789")},
                         alice.token)["addExchangeAccount"]
    assert refused["__typename"] == "AccountErrors"
    assert refused["code"] == "EXCHANGE_AUTH_FAILED"
    assert "wrong-secret-0123456789" not in str(refused)
    edges = server.gql(LIST, {}, alice.token)["exchangeAccounts"]["edges"]
    assert [e["node"]["kind"] for e in edges] == ["PAPER"]


def test_an_unknown_exchange_is_not_supported(server, sim) -> None:
    alice = server.user("alice")
    refused = server.gql(ADD, {"input": keys(sim, exchange="nope")},
                         alice.token)["addExchangeAccount"]
    assert (refused["code"], refused["errors"][0]["field"]) == (
        "EXCHANGE_NOT_SUPPORTED", "exchange")


def test_pages_follow_the_cursor(server, sim) -> None:
    alice = server.user("alice")
    server.gql(ADD, {"input": keys(sim)}, alice.token)
    first = server.gql(LIST, {"first": 1}, alice.token)["exchangeAccounts"]
    assert first["pageInfo"]["hasNextPage"] is True
    second = server.gql(LIST, {"first": 1, "after": first["pageInfo"]["endCursor"]},
                        alice.token)["exchangeAccounts"]
    assert [e["node"]["kind"] for e in second["edges"]] == ["LIVE"]
    assert second["pageInfo"] == {"hasNextPage": False,
                                  "endCursor": second["edges"][0]["cursor"]}
    answer = server.post(LIST, {"after": "not-a-cursor"}, alice.token)
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


def test_removal_is_refused_while_a_bot_runs_on_it_and_others_cannot_remove(server,
                                                                            sim) -> None:
    alice, bob = server.user("alice"), server.user("bob")
    account = server.gql(ADD, {"input": keys(sim)}, alice.token)["addExchangeAccount"]["id"]
    bot = server.gql(CREATE_BOT, {"name": "on testnet", "config": _config(),
                                  "account": account}, alice.token)["createBot"]["id"]
    server.start_bot(alice, bot)
    refused = server.gql(REMOVE, {"id": account}, alice.token)["removeExchangeAccount"]
    assert refused["code"] == "ACCOUNT_IN_USE" and "on testnet" in refused["message"]
    assert server.gql(REMOVE, {"id": account}, bob.token)["removeExchangeAccount"][
        "code"] == "NOT_FOUND"
    server.gql("mutation($id: ID!) { pauseBot(id: $id) { __typename } }", {"id": bot},
               alice.token)
    removed = server.gql(REMOVE, {"id": account}, alice.token)["removeExchangeAccount"]
    assert removed == {"__typename": "ExchangeAccount", "id": account}
    edges = server.gql(LIST, {}, alice.token)["exchangeAccounts"]["edges"]
    assert [e["node"]["kind"] for e in edges] == ["PAPER"]
    again = server.gql(START_BOT, {"id": bot}, alice.token)["startBot"]
    assert again["code"] == "ACCOUNT_REMOVED"


def test_a_bot_on_a_real_money_account_starts_only_where_live_is_allowed(server) -> None:
    alice = server.user("alice")
    account = _real_money_account(server, alice.user_id)
    bot = server.gql(CREATE_BOT, {"name": "real", "config": _config(), "account": account},
                     alice.token)["createBot"]["id"]
    refused = server.gql(START_BOT, {"id": bot}, alice.token)["startBot"]
    assert refused == {"__typename": "BotErrors", "code": "LIVE_TRADING_DISABLED"}
    runtime = server.runtime
    runtime.settings = replace(runtime.settings, allow_live=True)
    runtime.exchange_accounts.allow_live = True  # as a server started with it would be
    del runtime.__dict__["bots"]  # the bot commands are made again with the new setting
    server.start_bot(alice, bot)


def _real_money_account(server: Server, owner: str) -> str:
    """A live account on binance's real side, stored as ``addExchangeAccount`` stores one
    (no test may reach the real exchange to check its keys)."""
    runtime, owner_id = server.runtime, UUID(owner)
    seal = runtime.identity.data_keys.seal
    cause = runtime.trading.cause(owner)
    account = ExchangeAccount.open(runtime.trading.ids.new_id(), cause, owner_id=owner,
                                   kind=AccountKind.LIVE, exchange="binance",
                                   quote_asset="USDT")
    account.connect(cause, name="real money", sandbox=False, keys=SealedKeys(
        seal(owner_id, "exchange-api-key", "k"), seal(owner_id, "exchange-secret", "s")))
    runtime.trading.save_all(account)
    return str(account.id)


def _config() -> dict:
    from tests.api.conftest import CONFIG

    return dict(CONFIG)


@pytest.mark.parametrize("variables", [
    {"input": {"apiKey": "K-7f3a9c1e5b", "secret": "S-2d8e4a6c0f"}},  # exchange missing
    {"input": {"exchange": "binance", "apiKey": "K-7f3a9c1e5b", "secret": "S-2d8e4a6c0f",
               "sandbox": "K-7f3a9c1e5b"}},  # a key where a Boolean goes
])
def test_a_malformed_request_does_not_echo_the_keys_it_sent(server, variables) -> None:
    alice = server.user("alice")
    answer = server.post(ADD, variables, alice.token)
    assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == (
        "BAD_USER_INPUT")
    assert "K-7f3a9c1e5b" not in str(answer) and "S-2d8e4a6c0f" not in str(answer)
    assert "$input" in answer["errors"][0]["message"]


DRIFT = """query($first: Int, $after: String) {
  drift(first: $first, after: $after) {
    edges { cursor node { kind accountId asset expected observed clientOrderId pair } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def test_drift_shows_what_the_exchange_said_apart_from_what_the_deals_hold(server,
                                                                           sim) -> None:
    alice, bob = server.user("alice"), server.user("bob")
    account = server.gql(ADD, {"input": keys(sim)}, alice.token)["addExchangeAccount"]["id"]
    trading = server.runtime.trading
    aggregate = trading.load(UUID(account), ExchangeAccount)
    cause = trading.cause("system:reconciliation")
    aggregate.detect_drift(cause, "BTC", Decimal("0.5"), Decimal("0.25"))
    aggregate.found_stray_order(cause, "ab" * 16, "1001", "BTC/USDT")
    aggregate.resolve_drift(cause, "BTC", Decimal("0.5"))
    trading.save_all(aggregate)
    server.runtime.refresh()

    edges = server.gql(DRIFT, {}, alice.token)["drift"]["edges"]
    assert [e["node"]["kind"] for e in edges] == [
        "drift_resolved", "stray_order_cancelled", "drift_detected"]
    detected = edges[2]["node"]
    assert (detected["accountId"], detected["asset"], detected["expected"],
            detected["observed"]) == (account, "BTC", "0.5", "0.25")
    assert edges[1]["node"]["clientOrderId"] == "ab" * 16
    page = server.gql(DRIFT, {"first": 1, "after": edges[0]["cursor"]}, alice.token)["drift"]
    assert [e["node"]["kind"] for e in page["edges"]] == ["stray_order_cancelled"]
    assert page["pageInfo"]["hasNextPage"] is True
    assert server.gql(DRIFT, {}, bob.token)["drift"]["edges"] == []


def test_the_wallet_monitor_observes_a_live_account_through_the_exchange(server, sim) -> None:
    alice = server.user("alice")
    account = server.gql(ADD, {"input": keys(sim)}, alice.token)["addExchangeAccount"]["id"]
    # (1000 + 100 + 200 + 400) × 1.001 = 1701.7 USDT at worst; the account holds 1234.5.
    config = {**_config(), "baseOrderQuote": "1000", "safetyOrderQuote": "100",
              "maxSafetyOrders": 3, "safetyVolumeScale": "2"}
    bot = server.gql(CREATE_BOT, {"name": "hungry", "config": config, "account": account},
                     alice.token)["createBot"]["id"]
    funding = server.runtime.wallet_monitor.funding
    [plan] = funding.plans(alice.user_id)
    assert (plan.bot_id, plan.account_id, plan.amount) == (bot, account, Decimal("467.2"))
    monitor = server.runtime.wallet_monitor
    # The paper account's 10,000 USDT, first seen; the live one as reported when added.
    assert monitor.run(server.clock.now()) == 1
    sim.deposit("USDT", "500")
    assert monitor.run(server.clock.now()) == 2  # the new USDT balance, and the plan
    observed = server.runtime.trading.get_account(UUID(account)).observed
    assert observed["USDT"] == (Decimal("1734.5"), Decimal(0))
    assert funding.plan(alice.user_id, plan.id).status.value == "ready_to_execute"
    assert monitor.state.errors == {}
