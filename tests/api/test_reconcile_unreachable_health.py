"""The server's ``/health`` while the exchange of a live (sandbox) account cannot be reached:
the ``reconciliation`` task amber with ``EXCHANGE_UNAVAILABLE`` and since when (what the
dashboard's health view lists, task by task), the account under ``exchanges``; green again
after the next round once the exchange answers. The server's own runtime and schedule (its
rounds run here, not on their thread), the real ccxt client, the local exchange simulator
with its API port closed; SQLite and PostgreSQL (where the account is reconciled under a
turn of its own)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import CONFIG, CREATE_BOT, served
from tests.api.test_exchange_accounts import ADD, keys, sim  # noqa: F401

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(sim, persistent_store_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TRADETAPE_SANDBOX_HOST", sim.url)
    with served(persistent_store_url, monkeypatch) as server:
        yield server


def _trading_on_the_sandbox(server, sim):  # noqa: F811
    """alice's bot trading on her sandbox account (its base order on the exchange: a live
    market to reconcile); her account's id and the reconciliation's schedule."""
    alice = server.user("alice")
    account = server.gql(ADD, {"input": keys(sim)}, alice.token)["addExchangeAccount"]["id"]
    bot = server.gql(CREATE_BOT, {"name": "live", "config": dict(CONFIG), "account": account},
                     alice.token)["createBot"]
    assert bot["__typename"] == "Bot", bot  # a bot on the sandbox account
    server.start_bot(alice, bot["id"])
    server.step()
    reconciling = next(s for s in server.runtime.schedules if s.name == "reconciliation")
    return alice, account, reconciling


def test_health_shows_the_reconciliation_amber_while_the_exchange_is_unreachable(
        server, sim):  # noqa: F811
    _, account, reconciling = _trading_on_the_sandbox(server, sim)
    health = server.admin_health  # the operator's view: the account listed

    reconciling.run_once()
    assert health()["background"]["tasks"]["reconciliation"]["status"] == "green"
    sim.go_down()
    try:
        server.clock.current += timedelta(seconds=61)
        down_at = server.clock.now().isoformat()
        reconciling.run_once()
        answer = health()
        task = answer["background"]["tasks"]["reconciliation"]
        assert task["status"] == "amber", task  # (it stayed green: only `exchanges` said it)
        assert (task["error"]["code"], task["error"]["since"]) == ("EXCHANGE_UNAVAILABLE",
                                                                   down_at)
        assert answer["background"]["status"] == "amber"
        assert answer["exchanges"]["accounts"][account]["status"] == "unreachable"
        # /health answers anyone: the code alone, never the message (it quotes the
        # exchange's URL with its query string; the log has it)
        assert answer["exchanges"]["accounts"][account]["error"] == "EXCHANGE_UNAVAILABLE"
    finally:
        sim.come_up()
    server.clock.current += timedelta(seconds=61)
    reconciling.run_once()
    task = health()["background"]["tasks"]["reconciliation"]
    assert (task["status"], task["error"]) == ("green", None)


def test_health_shows_accounts_to_administrators_only(server, sim):  # noqa: F811
    """Anyone may ask ``/health`` (a load balancer, a monitor): without an administrator's
    token it still says what is wrong (amber, the task's code, the accounts counted by
    status), but names no account and quotes no error text. Before, the anonymous answer
    listed the account by its id."""
    alice, account, reconciling = _trading_on_the_sandbox(server, sim)
    admin = server.user("root", role="admin")
    reconciling.run_once()
    sim.go_down()
    try:
        server.clock.current += timedelta(seconds=61)
        reconciling.run_once()
        answers = {who: server.client.get("/health", headers=headers) for who, headers in (
            ("anyone", {}), ("alice", _bearer(alice.token)), ("forged", _bearer("at.nope")),
            ("admin", _bearer(admin.token)))}
    finally:
        sim.come_up()
    full = answers.pop("admin")
    for who, answer in answers.items():  # alice owns the account: still not on /health
        assert account not in answer.text, who
        assert answer.status_code == full.status_code, who
        assert answer.headers["X-Health-View"] == "public", who
        body = answer.json()
        assert (body["status"], body["exchanges"]["status"]) == (
            full.json()["status"], "amber"), who
        assert "accounts" not in body["exchanges"], who
        assert body["exchanges"]["accounts_by_status"] == {"unreachable": 1}, who
        assert body["exchanges"]["account_errors"] == {"EXCHANGE_UNAVAILABLE": 1}, who
        task = body["background"]["tasks"]["reconciliation"]
        assert (task["status"], task["error"]["code"]) == ("amber", "EXCHANGE_UNAVAILABLE")
        assert set(body) == set(full.json()), who  # every part, each with its status
    assert full.headers["X-Health-View"] == "full"
    assert full.json()["exchanges"]["accounts"][account]["error"] == "EXCHANGE_UNAVAILABLE"
    # GraphQL's systemStatus shows its parts alike
    parts = "{ systemStatus { health parts } }"
    assert account not in str(server.gql(parts)) and account not in str(
        server.gql(parts, token=alice.token))
    shown = server.gql(parts, token=admin.token)["systemStatus"]["parts"]
    assert shown["exchanges"]["accounts"][account]["status"] == "unreachable"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_tells_anyone_no_host_or_pid(server, sim):  # noqa: F811
    """Where the deployment runs is for administrators: the anonymous ``/health`` names a
    process by its role and a tag (one process's rows share it, and this process's part
    says its own), never its host name or pid. Before, every task row of the deployment
    (PostgreSQL) carried both, and the ``process`` part its pid."""
    import os
    import socket

    alice, _, reconciling = _trading_on_the_sandbox(server, sim)
    admin = server.user("root", role="admin")
    reconciling.run_once()
    board = server.runtime.task_board  # PostgreSQL: every process's tasks, published
    if board is not None:
        board.publish()
    full = server.client.get("/health", headers=_bearer(admin.token)).json()
    assert full["process"]["pid"] == os.getpid()  # (the operator's view keeps them)
    host = socket.gethostname()
    for headers in ({}, _bearer(alice.token)):
        answer = server.client.get("/health", headers=headers)
        body = answer.json()
        assert "pid" not in body["process"], body["process"]
        assert f"-{host}-" not in answer.text, body  # (in a process's name: role-host-pid-…)
        assert body["process"]["role"] == full["process"]["role"]
        if board is None:  # SQLite: one process, no deployment list
            assert "deployment" not in body["background"]
            continue
        rows = body["background"]["deployment"]["tasks"]
        assert {row["task"] for row in rows} == {
            row["task"] for row in full["background"]["deployment"]["tasks"]}
        assert all("host" not in row and "pid" not in row for row in rows), rows
        tag = body["process"]["name"]  # this process's rows: found by its tag
        assert tag.startswith(f'{full["process"]["role"]}-') and tag != full["process"]["name"]
        assert {row["process"] for row in rows} == {tag}, rows
