"""Every event an admin command writes names the operator who ran it (``operator:NAME``,
from ``--actor`` or else the OS user), never ``system``."""

from __future__ import annotations

import json

import pytest

from adapters.security.server_secret import SECRET_KEY_ENV
from api.cli import main
from application.bootstrap import open_trading
from domain.bots import BotStatus
from tests.integration.conftest import CONFIG
from tests.integration.identity.conftest import PASSWORD, SECRET_KEY

# Each admin command that writes, in an order in which each has something to do.
ADMIN_COMMANDS = [
    ["users", "create", "--email", "b@example.com", "--password", PASSWORD, "--verified"],
    ["users", "verify", "a@example.com"],
    ["users", "role", "a@example.com", "provider"],
    ["users", "block", "a@example.com"],  # also pauses a's running bot
    ["users", "unblock", "a@example.com"],
    ["emergency", "stop", "--reason", "exchange incident"],
    ["emergency", "resume", "--reason", "all clear"],
    ["users", "forget", "a@example.com"],  # also pauses a's bot, started again
]


@pytest.fixture
def url(persistent_url: str, monkeypatch) -> str:
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv(SECRET_KEY_ENV, SECRET_KEY)
    monkeypatch.delenv("TRADETAPE_SMTP_URL", raising=False)
    return persistent_url


def events_after(url: str, position: int) -> list[tuple[str, str]]:
    """``(topic, actor)`` of every event stored after ``position``."""
    trading = open_trading(url)
    try:
        notes = trading.recorder.select_notifications(start=position, limit=10_000,
                                                      inclusive_of_start=False)
        return [(n.topic, json.loads(n.state)["actor"]) for n in notes]
    finally:
        trading.close()


def head(url: str) -> int:
    trading = open_trading(url)
    try:
        return trading.recorder.max_notification_id() or 0
    finally:
        trading.close()


def a_user_with_a_running_bot(url: str, capsys) -> str:
    assert main(["users", "create", "--email", "a@example.com", "--password", PASSWORD,
                 "--actor", "setup", "--database", url]) == 0
    assert main(["users", "list", "--json", "--database", url]) == 0
    (user,) = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    trading = open_trading(url)
    try:
        bot = trading.create_bot(owner_id=user["id"], name="dca", config=CONFIG,
                                 exchange_account_id=user["paper_account_id"])
        trading.start_bot(bot, actor=user["id"])
    finally:
        trading.close()
    return str(bot)


def restart(url: str, bot_id: str) -> None:
    from uuid import UUID

    trading = open_trading(url)
    try:
        if trading.get_bot(UUID(bot_id)).status is not BotStatus.RUNNING:
            trading.start_bot(UUID(bot_id), actor="owner")
    finally:
        trading.close()


@pytest.mark.parametrize("how", ["--actor", "os-user"])
def test_every_event_an_admin_command_writes_names_the_operator(url, capsys, monkeypatch,
                                                                  how):
    bot_id = a_user_with_a_running_bot(url, capsys)
    if how == "--actor":
        extra, expected = ["--actor", "ana.ops"], "operator:ana.ops"
    else:  # what getpass.getuser() reads first
        monkeypatch.setenv("LOGNAME", "night-shift")
        extra, expected = [], "operator:night-shift"
    for command in ADMIN_COMMANDS:
        if command[1] == "forget":
            restart(url, bot_id)  # so that forgetting has a bot to pause
        before = head(url)
        assert main([*command, *extra, "--database", url]) == 0, capsys.readouterr().err
        written = events_after(url, before)
        assert written, f"{command} wrote nothing"
        assert {actor for _, actor in written} == {expected}, (command, written)
        if command[1] in ("block", "forget"):
            assert "domain.bots:Bot.Paused" in {topic for topic, _ in written}
    capsys.readouterr()


def test_an_actor_that_is_not_one_printable_word_is_refused_and_nothing_is_written(url,
                                                                                   capsys):
    before = head(url)
    code = main(["emergency", "stop", "--reason", "x", "--actor", "two words",
                 "--database", url])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: INVALID_ACTOR: --actor: an actor name")
    assert head(url) == before


def test_users_role_changes_the_role_and_refuses_an_unknown_one(url, capsys):
    a_user_with_a_running_bot(url, capsys)
    assert main(["users", "role", "a@example.com", "admin", "--actor", "ana",
                 "--database", url]) == 0
    assert "a@example.com" in capsys.readouterr().out
    assert main(["users", "list", "--json", "--database", url]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["role"] == "admin"
    with pytest.raises(SystemExit):
        main(["users", "role", "a@example.com", "root", "--database", url])
    assert "invalid choice: 'root'" in capsys.readouterr().err
