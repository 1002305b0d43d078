"""``users forget`` while the server runs: the destroyed data key leaves no bytes behind in
the SQLite file or its write-ahead log (-wal, -shm)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.security.key_files import MASTER_KEY_ENV, SECRET_KEY_ENV
from api.cli import main
from application.bootstrap import open_identity
from tests.fakes import RecordingMailer
from tests.integration.identity.conftest import PASSWORD


def database_bytes(database: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in database.parent.glob(database.name + "*")
            if not path.name.endswith("-key")}


def test_forget_leaves_no_byte_of_the_key_in_the_database_files(tmp_path: Path, capsys,
                                                                 monkeypatch) -> None:
    for name in (SECRET_KEY_ENV, MASTER_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    database = tmp_path / "tradetape.sqlite"
    url = f"sqlite:///{database}"
    # The running server: its connections keep the database, and so its log, open.
    server = open_identity(url, mailer=RecordingMailer(), bcrypt_rounds=4)
    reader = sqlite3.connect(database)
    try:
        assert main(["users", "create", "--email", "gone@example.com", "--password",
                     PASSWORD, "--verified", "--database", url]) == 0
        user_id = server.find_user("gone@example.com").id
        stored = reader.execute("SELECT data_key FROM user_data_keys WHERE user_id = ?",
                                (str(user_id),)).fetchone()[0]
        assert any(stored.encode() in data for data in database_bytes(database).values())

        assert main(["users", "forget", "gone@example.com", "--database", url]) == 0

        assert server.get_user(user_id).erased  # the server reads the key as gone at once
        assert reader.execute("SELECT count(*) FROM user_data_keys").fetchone() == (0,)
        left = [name for name, data in database_bytes(database).items()
                if stored.encode() in data]
        assert left == [], f"the destroyed key is still in {left}"
    finally:
        reader.close()
        server.close()
    capsys.readouterr()
