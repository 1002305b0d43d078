"""``tradetape accounts``: operators add, list, check and remove a user's exchange accounts,
against the local exchange simulator as the sandbox host (``TRADETAPE_SANDBOX_HOST``)."""

from __future__ import annotations

import io
import json
import socket
import sys
from collections.abc import Iterator

import pytest

from adapters.security.server_secret import SECRET_KEY_ENV
from api.cli import main
from application.bootstrap import open_trading
from tests.exchange_simulator import running_simulator
from tests.integration.identity.conftest import PASSWORD, SECRET_KEY

EMAIL = "alice@example.com"


@pytest.fixture
def sim() -> Iterator:
    with running_simulator(balances={"USDT": "750", "ETH": "2"}) as handle:
        yield handle


@pytest.fixture
def url(persistent_url: str, sim, monkeypatch, capsys) -> str:
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv(SECRET_KEY_ENV, SECRET_KEY)
    monkeypatch.setenv("TRADETAPE_SANDBOX_HOST", sim.url)
    assert main(["users", "create", "--email", EMAIL, "--password", PASSWORD, "--verified",
                 "--database", persistent_url, "--actor", "ops"]) == 0
    capsys.readouterr()
    return persistent_url


def accounts(capsys, url: str, *args: str) -> tuple[int, str, str]:
    code = main(["accounts", *args, "--database", url])
    out, err = capsys.readouterr()
    return code, out, err


def add(capsys, url: str, *keys: str, extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    return accounts(capsys, url, "add", "--email", EMAIL, "--exchange", "binance",
                    "--sandbox", "--api-key", keys[0], "--secret", keys[1], "--actor", "ops",
                    *extra)


def log_head(url: str) -> int:
    trading = open_trading(url)
    try:
        return trading.recorder.max_notification_id() or 0
    finally:
        trading.close()


def test_add_with_the_right_keys_prints_the_account_and_its_balances(capsys, url,
                                                                     sim) -> None:
    code, out, err = add(capsys, url, sim.api_key, sim.secret, extra=("--json",))
    assert (code, err) == (0, "")
    row = json.loads(out)
    assert (row["exchange"], row["sandbox"], row["mode"], row["status"], row["name"]) == (
        "binance", True, "sandbox", "ok", "binance sandbox")
    assert row["balances"]["ETH"] == {"free": "2.00000000", "locked": "0",
                                      "total": "2.00000000"}
    assert sim.api_key not in out and sim.secret not in out


def test_keys_can_come_from_stdin(capsys, url, sim, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{sim.api_key}\n{sim.secret}\n"))
    code, out, _ = add(capsys, url, "-", "-")
    assert code == 0 and "added sandbox account 'binance sandbox'" in out


@pytest.mark.parametrize(("problem", "code_named"), [
    ("wrong secret", "EXCHANGE_AUTH_FAILED"),
    ("closed port", "EXCHANGE_UNAVAILABLE"),
    ("unknown exchange", "EXCHANGE_NOT_SUPPORTED"),
])
def test_a_refusal_exits_1_naming_the_code_and_stores_nothing(capsys, url, sim, monkeypatch,
                                                              problem, code_named) -> None:
    keys, extra = (sim.api_key, sim.secret), ()
    if problem == "wrong secret":
        keys = (sim.api_key, "wrong-secret-6f1e0a")
    elif problem == "closed port":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        monkeypatch.setenv("TRADETAPE_SANDBOX_HOST", f"http://127.0.0.1:{port}")
    before = log_head(url)
    if problem == "unknown exchange":
        code = main(["accounts", "add", "--email", EMAIL, "--exchange", "kraken-x",
                     "--api-key", keys[0], "--secret", keys[1], "--database", url])
        out, err = capsys.readouterr()
    else:
        code, out, err = add(capsys, url, *keys, extra=extra)
    assert code == 1
    assert err.startswith(f"error: {code_named}: ") and err.count("\n") == 1, err
    assert out == ""
    assert keys[1] not in err and keys[0] not in err
    assert log_head(url) == before


def test_list_balances_and_remove(capsys, url, sim) -> None:
    account = json.loads(add(capsys, url, sim.api_key, sim.secret,
                             extra=("--json", "--name", "main testnet"))[1])["id"]
    code, out, _ = accounts(capsys, url, "list", "--email", EMAIL)
    assert code == 0
    assert "main testnet" in out and "sandbox" in out and "paper" in out
    sim.deposit("BTC", "0.1")
    code, out, _ = accounts(capsys, url, "balances", "--email", EMAIL, "--json", "--actor",
                            "ops")
    [row] = json.loads(out)
    assert code == 0 and row["balances"]["BTC"]["free"] == "0.10000000"
    assert row["last_sync_at"] is not None
    code, out, _ = accounts(capsys, url, "remove", account, "--email", EMAIL)
    assert code == 0 and f"removed sandbox account 'main testnet' ({account})" in out
    code, out, _ = accounts(capsys, url, "list", "--email", EMAIL, "--json")
    assert [r["kind"] for r in json.loads(out)] == ["paper"]


def test_balances_says_which_account_failed_and_exits_1(capsys, url, sim) -> None:
    assert add(capsys, url, sim.api_key, sim.secret)[0] == 0
    sim.go_down()
    try:
        code, out, err = accounts(capsys, url, "balances", "--email", EMAIL, "--json")
    finally:
        sim.come_up()
    assert code == 1
    assert err.startswith("error: EXCHANGE_UNAVAILABLE: binance sandbox (")
    [row] = json.loads(out)
    assert row["status"] == "unreachable"


def test_an_unknown_user_is_not_found(capsys, url) -> None:
    code, _, err = accounts(capsys, url, "list", "--email", "nobody@example.com")
    assert code == 2 and err.startswith("error: NOT_FOUND")
