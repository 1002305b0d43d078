"""``serve --role``: an api process, an engine worker and a projections process on one
PostgreSQL database, each a real ``tradetape serve``. A bot started through the api is
traded by the engine worker (the api trades nothing), its events reach the api's GraphQL
subscription (NOTIFY), its views are kept by the projections process, and closing its deal
through the api is done by the engine worker that holds the bot."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

from tests.e2e.conftest import (
    CONFIG,
    CREATE_BOT,
    DEAL_WAIT,
    START_BOT,
    TRADETAPE,
    ServerProcess,
    new_user,
    server_env,
)
from tests.e2e.test_journey import bot_events

CLOSE_DEAL = """mutation($id: ID!) {
  closeDeal(id: $id) { __typename ... on Deal { id status closeReason }
                       ... on DealErrors { code message } }
}"""
BOT = """query($id: ID!) { bot(id: $id) { id status dealsOpened dealsClosed openDealId } }"""


def worker(role: str, url: str, logs) -> subprocess.Popen:
    out = (logs / f"{role}.log").open("wb")
    return subprocess.Popen([str(TRADETAPE), "serve", "--role", role, "--database", url,
                             "--speed", "3000"], stdout=out, stderr=subprocess.STDOUT,
                            env=server_env(TRADETAPE_LEASE_SECONDS="2"), cwd=logs)


def test_api_engine_and_projections_in_three_processes(postgres_url, tmp_path):
    others = [worker("projections", postgres_url, tmp_path),
              worker("engine", postgres_url, tmp_path)]
    api = ServerProcess(postgres_url, tmp_path, args=["--role", "api"],
                        env={"TRADETAPE_LEASE_SECONDS": "2"})
    try:
        ready = time.monotonic() + 30
        while "following the log" not in (tmp_path / "projections.log").read_text():
            assert time.monotonic() < ready, (tmp_path / "projections.log").read_text()
            time.sleep(0.1)
        api.start()
        token = new_user(api, "roles@example.com")
        bot = api.gql(CREATE_BOT, {"name": "split", "config": CONFIG}, token)["createBot"]
        assert api.gql(START_BOT, {"id": bot["id"]}, token)["startBot"]["status"] == "RUNNING"
        # the engine worker trades it: a deal opens and closes, seen live by the api
        events = asyncio.run(bot_events(api.ws_url, token, bot["id"], DEAL_WAIT))
        kinds = [e["type"] for e in events]
        assert "Deal.Opened" in kinds and "Deal.Closed" in kinds, kinds
        assert {e["actor"] for e in events if e["type"].startswith("Order.")} == {"engine"}
        assert "Tradetape engine worker" in (tmp_path / "engine.log").read_text()
        # the views (kept by the projections process) follow; a deal open now is closed
        # through the api by the engine worker
        deadline = time.monotonic() + DEAL_WAIT
        while time.monotonic() < deadline:
            seen = api.gql(BOT, {"id": bot["id"]}, token)["bot"]
            if seen["dealsClosed"] >= 1 and seen["openDealId"]:
                break
            time.sleep(0.2)
        assert seen["dealsClosed"] >= 1 and seen["openDealId"], seen
        closed = api.gql(CLOSE_DEAL, {"id": seen["openDealId"]}, token)["closeDeal"]
        assert closed in ({"__typename": "Deal", "id": seen["openDealId"], "status": "CLOSED",
                           "closeReason": "manual"},
                          # the take profit may have sold it first
                          {"__typename": "DealErrors", "code": "DEAL_NOT_OPEN",
                           "message": closed.get("message")}), closed
    finally:
        if api.running:
            api.stop()
        for process in others:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in others]
    assert codes == [0, 0]
    for role in ("projections", "engine"):
        assert "Traceback" not in (tmp_path / f"{role}.log").read_text()
