"""Operators' text inputs pass the same rule as users' (domain/text.py): one line naming the
code and the field, nothing recorded."""

from __future__ import annotations

import pytest

from adapters.security.server_secret import SECRET_KEY_ENV
from tests.integration.identity.conftest import PASSWORD, SECRET_KEY
from tests.integration.identity.test_users_command import listed, users


@pytest.fixture
def database(persistent_url: str, monkeypatch) -> str:
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv(SECRET_KEY_ENV, SECRET_KEY)
    monkeypatch.delenv("TRADETAPE_SMTP_URL", raising=False)
    return persistent_url


def test_users_create_refuses_control_characters_and_overlong_names(capsys, database):
    for display, expected in (("bell\x07", "TEXT_CONTROL_CHARACTER (display_name): must "),
                              ("rtl\u202eoverride",
                               "TEXT_CONTROL_CHARACTER (display_name): must "),
                              ("y" * 101, "DISPLAY_NAME_TOO_LONG (display_name): a display "
                                          "name has at most 100")):
        code, _, err = users(capsys, database, "create", "--email", "op@example.com",
                             "--password", PASSWORD, "--display-name", display)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"error: {expected}"), err
    assert "op@example.com" not in listed(capsys, database)
