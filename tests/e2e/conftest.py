"""End-to-end: the real ``tradetape serve`` as a subprocess, driven over HTTP and websockets.

Each server listens on a free loopback port with its own SQLite file, ``TRADETAPE_SECRET_KEY``
set and a fast paper market (``--speed``). Its stdout (the demo login line) and stderr (the
console mailer's verification tokens) are captured to files. A server is stopped with
SIGTERM and must exit cleanly: exit code 0 and no traceback, within the grace period.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.graphql_client import GraphQLCalls

TRADETAPE = Path(sys.executable).with_name("tradetape")
SECRET_KEY = "e2e-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "Correct-Horse-9"
FAST = 3000.0  # market minutes per real minute: 50 one-minute candles a second
# A ready server answers /health at once; the limit only matters on a loaded machine,
# where 30 s killed servers that had printed their banner (load ~20 on 2 cores).
STARTUP_SECONDS = 60.0
EXIT_SECONDS = 20.0  # uvicorn's graceful timeout is 10 s, then the runtime stops



def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any TRADETAPE_* setting, plus the secret key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADETAPE_")}
    env.update(TRADETAPE_SECRET_KEY=SECRET_KEY, TRADETAPE_BCRYPT_ROUNDS="4",
               PYTHONUNBUFFERED="1", **extra)
    return env


@dataclass
class ServerProcess(GraphQLCalls):
    """One ``tradetape serve`` process."""

    database_url: str
    logs: Path
    speed: float | None = FAST
    demo: bool = False
    env: dict[str, str] = field(default_factory=dict)  # more settings for the server
    port: int = 0
    process: subprocess.Popen | None = None
    started_at: float = 0.0  # time.monotonic() when the process was spawned
    runs: int = 0
    env: dict[str, str] = field(default_factory=dict)  # TRADETAPE_* settings of its own
    args: list[str] = field(default_factory=list)  # more command-line options (--role api)
    _client: httpx.Client | None = field(default=None, repr=False)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> ServerProcess:
        for _attempt in range(3):  # another process may take the free port first
            self.port, self.runs = free_port(), self.runs + 1
            command = [str(TRADETAPE), "serve", "--port", str(self.port),
                       "--database", self.database_url]
            if self.speed is not None:
                command += ["--speed", f"{self.speed:g}"]
            if self.demo:
                command.append("--demo")
            command += self.args
            with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
                self.started_at = time.monotonic()
                self.process = subprocess.Popen(command, stdout=out, stderr=err,
                                                env=server_env(**self.env), cwd=self.logs)
            if self._wait_ready():
                return self
            if "address already in use" not in self.stderr.lower():
                break
        raise AssertionError(f"the server did not start (exit {self.process.poll()}):\n"
                             f"{self.stdout}\n{self.stderr}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        return False

    def stop(self) -> int:
        """SIGTERM, then the server must exit cleanly (0, no traceback) within the grace
        period. Returns how long it took to exit, in seconds."""
        assert self.process is not None and self.process.poll() is None, "not running"
        self.close_client()
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"no exit {EXIT_SECONDS:g} s after SIGTERM:\n"
                                 f"{self.stderr}") from None
        took = time.monotonic() - began
        assert code == 0, f"exit code {code} after SIGTERM:\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        assert "ERROR" not in self.stderr, self.stderr
        return took

    def kill(self) -> None:
        self.close_client()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --- output ---------------------------------------------------------------------------

    @property
    def stdout_path(self) -> Path:
        return self.logs / f"stdout-{self.runs}.txt"

    @property
    def stderr_path(self) -> Path:
        return self.logs / f"stderr-{self.runs}.txt"

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def mail_token(self, email: str, timeout: float = 10.0) -> str:
        """The latest verification token the console mailer printed for ``email``."""
        pattern = re.compile(rf"--- mail to {re.escape(email)}: Verify[^\n]*\n(?:[^\n]*\n)*?"
                             r"or use this token: (\S+)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.findall(self.stderr)
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no verification mail to {email} on stderr:\n{self.stderr}")

    def login_line(self) -> str:
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith("demo login: ")]
        assert len(lines) == 1, f"expected one demo login line:\n{self.stdout}"
        return lines[0]

    # --- HTTP -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=30)
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


    def health(self) -> dict[str, Any]:
        return self.client.get("/health").json()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Any]:
    """``launch(database=None, speed=FAST, demo=False, env=None)``: a started server (``env``:
    more environment for it). Servers still running at the end are stopped with SIGTERM and
    must exit cleanly."""
    servers: list[ServerProcess] = []

    def start(database: str | None = None, speed: float | None = FAST,
              demo: bool = False, env: dict[str, str] | None = None) -> ServerProcess:
        logs = tmp_path / f"server-{len(servers)}"
        logs.mkdir()
        url = database or f"sqlite:///{tmp_path / 'e2e.sqlite'}"
        server = ServerProcess(url, logs, speed=speed, demo=demo, env=env or {})
        servers.append(server)
        return server.start()

    yield start
    failures = []
    try:
        for server in servers:
            if server.running:
                try:
                    server.stop()
                except AssertionError as error:
                    failures.append(str(error))
    finally:  # a second Ctrl-C while one stops: the others are ended all the same
        for server in servers:
            server.kill()
    assert not failures, "\n".join(failures)


# --- operations the tests share -------------------------------------------------------------

# Deals open and close within seconds at FAST: take profit 0.2 %, stop loss 0.6 %. On every
# start position of the shipped November 2025 series the first deal closes within 675
# candles (13.5 s at 3000x), and no deal lasts more than 761.
CONFIG = {
    "pair": "BTC/USDT", "baseOrderQuote": "100", "safetyOrderQuote": "50",
    "maxSafetyOrders": 2, "priceDeviationPct": "0.3", "safetyVolumeScale": "1.5",
    "safetyStepScale": "1.2", "takeProfitPct": "0.2", "stopLossPct": "0.6",
}
DEAL_WAIT = 60.0

LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    __typename
    ... on AuthPayload { accessToken refreshToken expiresAt user { id email emailVerified } }
    ... on AuthError { code message }
  }
}"""
CREATE_BOT = """mutation($name: String!, $config: DcaConfigInput!) {
  createBot(name: $name, config: $config) {
    __typename
    ... on Bot { id name status mode pair exchangeAccountId }
    ... on BotErrors { code errors { code field message } }
  }
}"""
START_BOT = """mutation($id: ID!) {
  startBot(id: $id) { __typename ... on Bot { id status } ... on BotErrors { code message } }
}"""
BOT = """query($id: ID!) {
  bot(id: $id) { id status dealsOpened dealsClosed openDealId
                 openDeal { id status safetyOrdersUsed } }
}"""
DEAL = """query($id: ID!) {
  deal(id: $id) {
    id botId status closeReason realizedPnl safetyOrdersUsed
    orders { id side purpose safetyOrder status }
    fills { orderId side price amount fee safetyOrder }
  }
}"""


def login(server: ServerProcess, email: str, password: str = PASSWORD) -> str:
    data = server.gql(LOGIN, {"email": email, "password": password})["login"]
    assert data["__typename"] == "AuthPayload", data
    return data["accessToken"]


def create_bot(server: ServerProcess, token: str, name: str = "e2e scalper") -> str:
    data = server.gql(CREATE_BOT, {"name": name, "config": CONFIG}, token)["createBot"]
    assert data["__typename"] == "Bot", data
    assert data["status"] == "CREATED" and data["mode"] == "PAPER", data
    return data["id"]


def start_bot(server: ServerProcess, token: str, bot_id: str) -> None:
    data = server.gql(START_BOT, {"id": bot_id}, token)["startBot"]
    assert data == {"__typename": "Bot", "id": bot_id, "status": "RUNNING"}, data


def wait_for(what: str, probe, timeout: float = DEAL_WAIT, every: float = 0.2):
    """Call ``probe()`` until it answers something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) {
    __typename ... on RegisterPayload { user { id } } ... on InputErrors { code }
  }
}"""
VERIFY = """mutation($token: String!) {
  verifyEmail(token: $token) { __typename ... on User { emailVerified } }
}"""


def new_user(server: ServerProcess, email: str) -> str:
    """Register, verify with the mailed token and log in over the API: the access token."""
    assert server.gql(REGISTER, {"email": email, "password": PASSWORD}
                      )["register"]["__typename"] == "RegisterPayload"
    verified = server.gql(VERIFY, {"token": server.mail_token(email)})["verifyEmail"]
    assert verified == {"__typename": "User", "emailVerified": True}
    return login(server, email)


def projection_lag(database_url: str) -> dict[str, int]:
    """What ``tradetape projections status`` says each read model still has to apply."""
    done = subprocess.run([str(TRADETAPE), "projections", "status", "--json", "--database",
                           database_url], capture_output=True, text=True, env=server_env(),
                          timeout=60, check=True)
    return {p["name"]: p["lag"] for p in json.loads(done.stdout)["projections"]}


# --- the browser tests: Debian's chromium through Playwright -------------------------------

# Nothing but loopback resolves: a CDN URL would fail even without the interception below.
OFFLINE = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'


def missing_browser(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what}; CI must run the browser tests (scripts/test installs it)",
                    pytrace=False)
    pytest.skip(f"{what} (scripts/test installs it)")


@pytest.fixture
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_browser("Playwright is not installed (the dev extras)")
    executable = os.environ.get("TRADETAPE_CHROMIUM") or shutil.which("chromium")
    if not executable:
        missing_browser("no chromium executable")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", OFFLINE])
        try:
            yield browser
        finally:
            browser.close()


def only_loopback(page) -> list[str]:
    """Refuse (and record, in the list returned) every request not to 127.0.0.1."""
    elsewhere: list[str] = []

    def route(request_route):
        if urlsplit(request_route.request.url).hostname == "127.0.0.1":
            request_route.continue_()
        else:
            elsewhere.append(request_route.request.url)
            request_route.abort("internetdisconnected")

    page.context.route("**/*", route)
    return elsewhere


# Answers that mean the page itself asked wrongly (or the server failed), whatever it shows.
PAGE_FAULTS = {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "QUERY_TOO_COSTLY",
               "QUERY_TOO_DEEP", "QUERY_TOO_LARGE", "TOO_MANY_ALIASES", "INVALID_PAGE_SIZE",
               "INTERNAL_SERVER_ERROR"}


def graphql_faults(page) -> list[str]:
    """Record (in the list returned) every GraphQL error over HTTP whose code says the
    page's document was wrong or the server failed."""
    faults: list[str] = []

    def check(response) -> None:
        if not response.url.endswith("/graphql") or response.request.method != "POST":
            return
        try:
            errors = response.json().get("errors") or []
        except Exception:  # not JSON: no GraphQL answer to judge
            return
        faults.extend(f"{e.get('extensions', {}).get('code')}: {e.get('message')}"
                      for e in errors if e.get("extensions", {}).get("code") in PAGE_FAULTS)

    page.on("response", check)
    return faults
