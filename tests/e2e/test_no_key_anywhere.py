"""A whole live-account journey, then a search for the keys everywhere it left a trace.

Accounts are added on the local exchange simulator (the server's and the CLI's sandbox host)
through the CLI and through GraphQL, with wrong keys first; listed, their balances asked,
one removed; the server stopped; the audit trail exported and the events shown. No test key
(API key, secret, passphrase, nor the wrong secret typed first) may appear in any command's
output, the server's logs, a GraphQL answer, the export, or the database (SQLite's file
bytes; every table of the PostgreSQL schema)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, TRADETAPE, login, server_env
from tests.exchange_simulator import running_simulator

pytestmark = pytest.mark.timeout(180)

API_KEY = "TTAPIKEY7c1f9e2ad84b6035"
SECRET = "TTSECRET5b8e0d3f7a91c264"
PASSPHRASE = "TTPASSPHRASE93e1a7"
WRONG_SECRET = "TTWRONGSECRET0d4c8b2e"
KEYS = (API_KEY, SECRET, PASSPHRASE, WRONG_SECRET)
EMAIL = "alice@example.com"

ADD = """mutation($input: AddExchangeAccountInput!) {
  addExchangeAccount(input: $input) {
    __typename ... on ExchangeAccount { id name exchange sandbox kind status lastSyncAt
                                        balances { asset free } }
    ... on AccountErrors { code message errors { code field message } }
  }
}"""
LIST = """{ exchangeAccounts { edges { node { id name exchange sandbox kind status
  lastSyncAt balances { asset free locked total } } } } }"""
REMOVE = """mutation($id: ID!) { removeExchangeAccount(id: $id) {
  __typename ... on ExchangeAccount { id } ... on AccountErrors { code message } } }"""


class Trail:
    """Everything the journey printed or answered, to be searched at the end."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def keep(self, where: str, text: str) -> str:
        self.texts.append((where, text))
        return text

    def leaks(self) -> list[str]:
        return [f"{key} in {where}" for where, text in self.texts for key in KEYS
                if key in text]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journey.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_no_test_key_appears_in_any_output_log_answer_export_or_database(
        database, tmp_path, launch) -> None:
    trail = Trail()
    with running_simulator(api_key=API_KEY, secret=SECRET,
                           balances={"USDT": "5000", "BTC": "0.25"}) as sim:
        env = {"TRADETAPE_SANDBOX_HOST": sim.url, "TRADETAPE_KEY_DIR": str(tmp_path / "keys")}

        def cli(*args: str, expect: int = 0) -> str:
            done = subprocess.run([str(TRADETAPE), *args, "--database", database],
                                  capture_output=True, text=True, timeout=60, check=False,
                                  env=server_env(**env), cwd=tmp_path)
            trail.keep(f"`{args[0]} {args[1]}` stdout", done.stdout)
            trail.keep(f"`{args[0]} {args[1]}` stderr", done.stderr)
            assert done.returncode == expect, (args, done.stdout, done.stderr)
            return done.stdout + done.stderr

        cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--verified",
            "--actor", "ops")
        refused = cli("accounts", "add", "--email", EMAIL, "--exchange", "binance",
                      "--sandbox", "--api-key", API_KEY, "--secret", WRONG_SECRET,
                      "--actor", "ops", expect=1)
        assert "EXCHANGE_AUTH_FAILED" in refused
        added = json.loads(cli("accounts", "add", "--email", EMAIL, "--exchange", "binance",
                               "--sandbox", "--api-key", API_KEY, "--secret", SECRET,
                               "--password", PASSPHRASE, "--name", "cli testnet", "--json",
                               "--actor", "ops"))
        assert (added["sandbox"], added["mode"], added["status"]) == (True, "sandbox", "ok")

        server = launch(database=database, env=env)
        start_line = server.stdout.splitlines()[0]
        assert "exchange accounts: 1 sandbox" in start_line, start_line
        token = login(server, EMAIL)
        gql_added = _graphql_journey(server, token, trail)

        listing = cli("accounts", "list", "--email", EMAIL)
        assert "cli testnet" in listing and "sandbox" in listing
        assert "gql testnet" not in listing  # removed over GraphQL
        balances = cli("accounts", "balances", "--email", EMAIL, "--json", "--actor", "ops")
        assert json.loads(balances)[0]["balances"]["BTC"]["free"] == (
            "0.25000000")
        server.stop()
        trail.keep("server stdout", server.stdout)
        trail.keep("server stderr", server.stderr)
        assert ("exchange account check refused code=EXCHANGE_AUTH_FAILED "
                "exchange=binance sandbox=yes") in server.stderr

    export = cli("audit", "export")
    assert "ExchangeAccount.Connected" in export
    for account_id in (added["id"], gql_added):
        assert "Connected" in cli("events", account_id)
        cli("events", account_id, "--json")
    assert not trail.leaks(), trail.leaks()
    stored = _database_dump(database)
    assert b"ExchangeAccount" in stored or b"exchangeaccount" in stored.lower()
    assert [k for k in KEYS if k.encode() in stored] == []


def _graphql_journey(server, token: str, trail: Trail) -> str:
    """Add (wrong keys, a malformed request, right keys), list, remove over GraphQL; every
    answer kept. The id of the account added."""
    def post(query: str, variables: dict) -> dict:
        response = server.client.post("/graphql", json={"query": query, "variables":
                                                        variables},
                                      headers={"Authorization": f"Bearer {token}"})
        trail.keep(f"GraphQL answer to {query.split('(', maxsplit=1)[0]!r}", response.text)
        return response.json()

    keys = {"exchange": "binance", "sandbox": True, "apiKey": API_KEY, "secret": SECRET,
            "password": PASSPHRASE, "name": "gql testnet"}
    wrong = post(ADD, {"input": {**keys, "secret": WRONG_SECRET}})
    assert wrong["data"]["addExchangeAccount"]["code"] == "EXCHANGE_AUTH_FAILED"
    malformed = post(ADD, {"input": {k: v for k, v in keys.items() if k != "exchange"}})
    assert malformed["errors"], malformed
    added = post(ADD, {"input": keys})["data"]["addExchangeAccount"]
    assert (added["__typename"], added["sandbox"], added["status"]) == (
        "ExchangeAccount", True, "ok")
    nodes = [e["node"] for e in post(LIST, {})["data"]["exchangeAccounts"]["edges"]]
    assert sorted((n["kind"], n["name"], n["sandbox"]) for n in nodes) == [
        ("LIVE", "cli testnet", True), ("LIVE", "gql testnet", True),
        ("PAPER", "paper", False)]
    removed = post(REMOVE, {"id": added["id"]})["data"]["removeExchangeAccount"]
    assert removed == {"__typename": "ExchangeAccount", "id": added["id"]}
    trail.keep("health", httpx.get(f"{server.base_url}/health", timeout=10).text)
    return added["id"]


def _database_dump(database: str) -> bytes:
    """The store as bytes: SQLite's files, or every row of every table of the schema."""
    if database.startswith("sqlite:///"):
        path = Path(database.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(database).env
    schema = env["POSTGRES_SCHEMA"]
    dump = []
    with psycopg.connect(**_connect_kwargs(env)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,))]
        assert tables, "no tables found in the test's schema"
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                dump.append(repr(row).encode())
                dump.extend(bytes(v) for v in row if isinstance(v, bytes | memoryview))
    return b"\n".join(dump)
