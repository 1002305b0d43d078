"""A store that cannot be reached or read is said in one line with a code, at once, and
nothing is written: no traceback, no wait for the connection pool's 30-second timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.marketdata.shipped import shipped_series
from api.cli import main
from application.bootstrap import open_trading
from domain.errors import DomainError

EXAMPLE_BOT = str(Path(__file__).resolve().parents[2] / "api" / "examples" / "dca_bot.json")
CANDLES = shipped_series("freqtrade_XRP_ETH-1m.csv")
NOBODY_LISTENS = "postgresql://postgres@127.0.0.1:1/test"  # port 1: refused at once


def test_an_unreachable_postgresql_server_is_database_unavailable():
    with pytest.raises(DomainError) as raised:
        open_trading(NOBODY_LISTENS)
    assert raised.value.code == "DATABASE_UNAVAILABLE"
    assert "127.0.0.1:1" in str(raised.value) and "refused" in str(raised.value).lower()


def test_a_password_is_not_shown_in_the_error():
    url = NOBODY_LISTENS.replace("postgres@", "postgres:hunter2@")
    with pytest.raises(DomainError) as raised:
        open_trading(url)
    assert "hunter2" not in str(raised.value) and "***" in str(raised.value)


@pytest.mark.parametrize("command", [
    ["backtest", "--candles", str(CANDLES), "--config", EXAMPLE_BOT, "--store", NOBODY_LISTENS],
    ["replay", "--database", NOBODY_LISTENS],
    ["pnl", "--database", NOBODY_LISTENS],
])
def test_commands_say_the_database_is_unavailable_without_a_traceback(capsys, command):
    code = main([*command, "--no-progress"] if command[0] != "pnl" else command)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: DATABASE_UNAVAILABLE (database): cannot connect to "
                          "postgresql://postgres@127.0.0.1:1/test")
    assert "Traceback" not in err


def test_a_file_that_is_no_database_is_a_database_error(tmp_path, capsys):
    not_a_database = tmp_path / "notes.sqlite"
    not_a_database.write_text("shopping list\n" * 100)
    code = main(["replay", "--database", f"sqlite:///{not_a_database}", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == (f"error: DATABASE_ERROR: sqlite:///{not_a_database}: "
                           "file is not a database")
    assert not_a_database.read_text() == "shopping list\n" * 100  # left as it was


def test_a_folder_given_as_the_sqlite_file_is_a_database_error(tmp_path, capsys):
    folder = tmp_path / "runs.sqlite"
    folder.mkdir()
    code = main(["backtest", "--candles", str(CANDLES), "--config", EXAMPLE_BOT,
                 "--store", f"sqlite:///{folder}", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "DATABASE_ERROR" in err and "unable to open database file" in err
    assert list(folder.iterdir()) == []
