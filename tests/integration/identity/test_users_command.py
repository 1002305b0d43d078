"""``tradetape users``: operators manage accounts against a SQLite file or PostgreSQL."""

from __future__ import annotations

import io
import json
import sys

import pytest

from adapters.security.server_secret import SECRET_KEY_ENV
from api.cli import main
from application.bootstrap import open_identity, open_trading
from domain.bots import BotStatus
from tests.integration.conftest import CONFIG
from tests.integration.identity.conftest import PASSWORD, SECRET_KEY


@pytest.fixture
def url(persistent_url: str, monkeypatch) -> str:
    """Each command opens the store anew, as its own process would: no ``memory`` here."""
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv(SECRET_KEY_ENV, SECRET_KEY)
    monkeypatch.delenv("TRADETAPE_SMTP_URL", raising=False)
    return persistent_url


def users(capsys, url: str, *args: str) -> tuple[int, str, str]:
    code = main(["users", *args, "--database", url])
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys, url: str) -> dict[str, dict]:
    code, out, _ = users(capsys, url, "list", "--json")
    assert code == 0
    return {row["email"]: row for row in json.loads(out)}


def test_create_mails_a_verification_token_and_verify_marks_the_email(capsys, url) -> None:
    code, out, err = users(capsys, url, "create", "--email", "Alice@Example.com",
                           "--password", PASSWORD)

    assert code == 0
    assert "created user alice@example.com" in out and "10000 USDT" in out
    assert "verify-email?token=" in err  # the console mailer
    assert listed(capsys, url)["alice@example.com"]["verified"] is False
    assert users(capsys, url, "verify", "ALICE@example.com")[0] == 0
    assert listed(capsys, url)["alice@example.com"]["verified"] is True


def test_create_an_admin_already_verified_with_the_password_on_stdin(capsys, url,
                                                                    monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))

    code, _, err = users(capsys, url, "create", "--email", "root@example.com",
                           "--password", "-", "--role", "admin", "--verified")

    assert (code, err) == (0, "")
    row = listed(capsys, url)["root@example.com"]
    assert (row["role"], row["verified"]) == ("admin", True)
    identity = open_identity(url)
    try:
        assert identity.login("root@example.com", PASSWORD).user.role.value == "admin"
    finally:
        identity.close()


def test_create_with_a_weak_password_prints_one_error_per_rule(capsys, url) -> None:
    code, out, err = users(capsys, url, "create", "--email", "a@example.com",
                           "--password", "weakpass")

    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: PASSWORD_TOO_SHORT (password): must be at least 10 characters",
        "error: PASSWORD_NEEDS_UPPER (password): needs an upper-case letter",
        "error: PASSWORD_NEEDS_DIGIT (password): needs a digit",
    ]


def test_create_with_a_taken_email_is_refused(capsys, url) -> None:
    users(capsys, url, "create", "--email", "a@example.com", "--password", PASSWORD)

    code, _, err = users(capsys, url, "create", "--email", "A@example.com",
                         "--password", PASSWORD)

    assert (code, err.strip()) == (2, "error: EMAIL_TAKEN (email): that email is already "
                                      "registered")


def test_block_pauses_running_bots_and_unblock_lets_the_user_in(capsys, url) -> None:
    users(capsys, url, "create", "--email", "a@example.com", "--password", PASSWORD,
          "--verified")
    user_id = listed(capsys, url)["a@example.com"]["id"]
    trading = open_trading(url)
    try:
        bot = trading.create_bot(owner_id=user_id, name="dca", config=CONFIG,
                                 exchange_account_id="paper")
        trading.start_bot(bot)

        assert users(capsys, url, "block", "a@example.com")[0] == 0
        assert trading.get_bot(bot).status is BotStatus.PAUSED
    finally:
        trading.close()
    assert listed(capsys, url)["a@example.com"]["blocked"] is True
    assert users(capsys, url, "unblock", "a@example.com")[0] == 0
    assert listed(capsys, url)["a@example.com"]["blocked"] is False


def test_forget_leaves_the_user_listed_as_erased(capsys, url) -> None:
    users(capsys, url, "create", "--email", "a@example.com", "--password", PASSWORD)

    code, out, _ = users(capsys, url, "forget", "a@example.com")

    assert code == 0 and "forgot" in out
    (row,) = listed(capsys, url).values()
    assert (row["email"], row["erased"]) == ("erased", True)
    assert users(capsys, url, "forget", "a@example.com")[2].startswith("error: NOT_FOUND")


def test_an_unknown_email_is_not_found(capsys, url) -> None:
    code, _, err = users(capsys, url, "block", "nobody@example.com")

    assert (code, err.strip()) == (2, "error: NOT_FOUND: no user with email "
                                      "'nobody@example.com'")


def test_list_prints_a_table(capsys, url) -> None:
    users(capsys, url, "create", "--email", "a@example.com", "--password", PASSWORD)

    code, out, _ = users(capsys, url, "list")

    assert code == 0 and "1 users" in out and "a@example.com" in out
