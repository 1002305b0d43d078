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


def test_health_shows_the_reconciliation_amber_while_the_exchange_is_unreachable(
        server, sim):  # noqa: F811
    alice = server.user("alice")
    account = server.gql(ADD, {"input": keys(sim)}, alice.token)["addExchangeAccount"]["id"]
    bot = server.gql(CREATE_BOT, {"name": "live", "config": dict(CONFIG), "account": account},
                     alice.token)["createBot"]
    assert bot["__typename"] == "Bot", bot  # a bot on the sandbox account
    bot = bot["id"]
    server.start_bot(alice, bot)
    server.step()  # its base order on the exchange: a live market to reconcile
    reconciling = next(s for s in server.runtime.schedules if s.name == "reconciliation")

    def health() -> dict:
        return server.client.get("/health").json()

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
