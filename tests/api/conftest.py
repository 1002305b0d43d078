"""A server for API tests: the real runtime (``open_runtime``) on a temporary SQLite file,
driven by the test. Its clocks are one settable clock, so a test decides when candles close
(at speed 60, one per second) and when access tokens expire; the live loop is stepped by
the test, never by a thread.

Users are made through the identity service (bcrypt at cost 4), then use the API with their
access tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.clock import SettableClock
from api.server import create_app
from application.bootstrap import open_runtime
from application.runtime import Runtime
from application.server_settings import ServerSettings
from tests.graphql_client import GraphQLCalls

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "Correct-Horse-9"
CONFIG = {  # small targets: deals open and close within minutes of the shipped series
    "pair": "BTC/USDT", "baseOrderQuote": "100", "safetyOrderQuote": "50",
    "maxSafetyOrders": 2, "priceDeviationPct": "0.2", "safetyVolumeScale": "1.5",
    "safetyStepScale": "1.2", "takeProfitPct": "0.15",
}



@dataclass
class Account:
    user_id: str
    email: str
    token: str
    refresh_token: str
    paper_account_id: str


@dataclass
class Server(GraphQLCalls):
    runtime: Runtime
    client: TestClient
    clock: SettableClock
    accounts: dict[str, Account] = field(default_factory=dict)


    def user(self, name: str, *, role: str = "user", verified: bool = True) -> Account:
        identity = self.runtime.identity
        email = f"{name}@example.com"
        user_id = identity.register(email, PASSWORD, role=role, verified=verified,
                                    display_name=name)
        tokens = identity.login(email, PASSWORD)
        account = Account(str(user_id), email, tokens.access_token, tokens.refresh_token,
                          str(identity.get_user(user_id).paper_account_id))
        self.accounts[name] = account
        return account

    def admin_health(self) -> dict[str, Any]:
        """``/health`` as an administrator sees it (accounts, users, errors' text), asked with
        a token fresh at the test clock's now (tests move the clock past a token's life)."""
        if "operator" not in self.accounts:
            self.user("operator", role="admin")
        token = self.runtime.identity.login(self.accounts["operator"].email,
                                            PASSWORD).access_token
        return self.client.get("/health", headers={"Authorization": f"Bearer {token}"}).json()

    def step(self, seconds: float = 1) -> int:
        """Let ``seconds`` of wall time pass (a candle a second) and run one live step."""
        self.clock.current += timedelta(seconds=seconds)
        events = self.runtime.loop.step()
        self.runtime.refresh()
        return events

    def create_bot(self, account: Account, name: str = "scalper", **config: Any) -> str:
        data = self.gql(CREATE_BOT, {"name": name, "config": {**CONFIG, **config}},
                        account.token)["createBot"]
        assert data["__typename"] == "Bot", data
        return data["id"]

    def start_bot(self, account: Account, bot_id: str) -> None:
        data = self.gql(START_BOT, {"id": bot_id}, account.token)["startBot"]
        assert data["__typename"] == "Bot", data

    def running_deal(self, account: Account, name: str = "scalper") -> tuple[str, str]:
        """A started bot of ``account`` and its open deal (after one candle)."""
        bot_id = self.create_bot(account, name)
        self.start_bot(account, bot_id)
        self.step()
        deal_id = self.runtime.trading.get_bot(_uuid(bot_id)).open_deal_id
        assert deal_id is not None
        return bot_id, str(deal_id)


def _uuid(text: str):
    from uuid import UUID

    return UUID(text)


CREATE_BOT = """
mutation($name: String!, $config: DcaConfigInput!, $account: ID) {
  createBot(name: $name, config: $config, exchangeAccountId: $account) {
    __typename
    ... on Bot { id name status }
    ... on BotErrors { code errors { code field rule message } }
  }
}"""
START_BOT = """
mutation($id: ID!) { startBot(id: $id) { __typename ... on Bot { id status }
  ... on BotErrors { code } } }"""


def open_server(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Runtime, SettableClock]:
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    runtime = open_runtime(ServerSettings(database_url=url, speed=60))
    clock = SettableClock(T0)
    # One clock for events, tokens and the market feed: the test moves it.
    runtime.clock = runtime.trading.clock = runtime.loop.clock = clock
    return runtime, clock


@contextmanager
def served(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server on ``url`` (SQLite or PostgreSQL) with its test client, stopped after."""
    runtime, clock = open_server(url, monkeypatch)
    try:
        # (on PostgreSQL the views open beside the start: a test reads them straight away)
        getattr(runtime.read_models, "wait_open", lambda: None)()
        with TestClient(create_app(runtime, manage_runtime=False)) as client:
            yield Server(runtime, client, clock)
    finally:
        runtime.stop()


@pytest.fixture
def server(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    with served(f"sqlite:///{tmp_path / 'server.sqlite'}", monkeypatch) as server:
        yield server
