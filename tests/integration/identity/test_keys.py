"""The token secret and the master key live outside the database: a copy of the database
alone signs no token and opens no personal data; old databases move their keys out on the
first start; the master key rotates."""

from __future__ import annotations

import base64
import shutil
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.security.key_files import (
    KEY_DIR_ENV,
    MASTER_KEY_ENV,
    NEW_MASTER_KEY_ENV,
    SECRET_KEY_ENV,
)
from adapters.security.master_keys import MasterKeys
from adapters.security.server_secret import derive_key
from adapters.security.tokens import HmacTokenSigner
from api.cli import main
from application.bootstrap import open_identity, rotate_master_key
from domain.errors import DomainError
from domain.ports import AccessClaims
from domain.users import AuthenticationError, User
from tests.fakes import RecordingMailer
from tests.integration.identity.conftest import ALICE, PASSWORD

KEY_ENVS = (SECRET_KEY_ENV, MASTER_KEY_ENV, NEW_MASTER_KEY_ENV, KEY_DIR_ENV)


@pytest.fixture(autouse=True)
def no_key_settings(monkeypatch) -> None:
    """Keys from their default places: files beside the database."""
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)


def opened(url: str, **options):
    return open_identity(url, mailer=RecordingMailer(), bcrypt_rounds=4, **options)


def with_alice(url: str) -> tuple[UUID, str]:
    """Alice registered (verified) and logged in: her id and an access token."""
    identity = opened(url)
    try:
        user_id = identity.register(ALICE, PASSWORD, display_name="Alice", verified=True)
        return user_id, identity.login(ALICE, PASSWORD).access_token
    finally:
        identity.close()


def copy_database(source: Path, target_dir: Path) -> Path:
    """What a thief with read access takes: the database file and its journal files."""
    target_dir.mkdir()
    for path in source.parent.glob(source.name + "*"):
        if not path.name.endswith("-key"):
            shutil.copy(path, target_dir / path.name)
    return target_dir / source.name


def stored_strings(path: Path) -> list[str]:
    """Every text value in every table of a SQLite file."""
    with sqlite3.connect(path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE "
                                                 "type = 'table'")]
        values = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                values += [v for v in row if isinstance(v, str)]
    return values


def candidate_keys(value: str) -> list[bytes]:
    """What a stored value could be as a key: itself, or base64 of 32 bytes (any part)."""
    found = [value.encode()]
    for part in (value, *value.split(".")):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except ValueError:
            continue
        if len(raw) == 32:
            found.append(raw)
    return found


def test_a_copy_of_the_database_alone_signs_no_token_and_opens_no_personal_data(
        tmp_path: Path) -> None:
    database = tmp_path / "live" / "tradetape.sqlite"
    url = f"sqlite:///{database}"
    alice, token = with_alice(url)
    identity = opened(url)
    session = identity.authenticate(token)  # the real token works
    sealed_email = identity.trading.load(alice, User).sealed_email
    stolen = copy_database(database, tmp_path / "stolen")

    forged_any = opened_any = False
    for value in stored_strings(stolen):
        for key in candidate_keys(value):
            forged = HmacTokenSigner(derive_key(key, "access-tokens")).sign(
                AccessClaims(alice, _session_of(identity, alice), session.role.value,
                             identity.trading.clock.now() + timedelta(minutes=5)))
            try:
                identity.authenticate(forged)
                forged_any = True
            except AuthenticationError:
                pass
            opened_any |= _opens(key, alice, sealed_email)
    identity.close()

    assert not forged_any, "a token signed with a value from the database was accepted"
    assert not opened_any, "a value from the database opened Alice's sealed email"
    with pytest.raises(DomainError) as caught:
        opened(f"sqlite:///{stolen}")
    assert caught.value.code == "MASTER_KEY_MISSING"


def test_with_its_key_files_a_copied_database_works_as_before(tmp_path: Path) -> None:
    database = tmp_path / "live" / "tradetape.sqlite"
    alice, token = with_alice(f"sqlite:///{database}")
    keys = sorted(database.parent.glob("*-key"))
    assert [k.name for k in keys] == ["tradetape.sqlite.audit-key",
                                      "tradetape.sqlite.master-key",
                                      "tradetape.sqlite.secret-key"]
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)

    moved = copy_database(database, tmp_path / "moved")
    for key in keys:
        shutil.copy(key, moved.parent / key.name)
    identity = opened(f"sqlite:///{moved}")
    try:
        assert identity.authenticate(token).user_id == alice
        assert identity.login(ALICE, PASSWORD).user.display_name == "Alice"
    finally:
        identity.close()


def test_an_older_database_moves_its_secret_out_and_wraps_its_keys_at_first_start(
        tmp_path: Path) -> None:
    database = tmp_path / "tradetape.sqlite"
    url = f"sqlite:///{database}"
    alice, token = with_alice(url)
    raw_key = _make_it_look_like_the_previous_version(database)

    identity = opened(url)
    try:
        assert identity.authenticate(token).user_id == alice  # the same secret, moved out
        assert identity.login(ALICE, PASSWORD).user.email == ALICE.lower()
    finally:
        identity.close()
    rows = dict(sqlite3.connect(database).execute("SELECT user_id, data_key FROM "
                                                  "user_data_keys").fetchall())
    assert rows[str(alice)].startswith("w1.")
    assert sqlite3.connect(database).execute("SELECT count(*) FROM server_secrets"
                                             ).fetchone() == (0,)
    for path in database.parent.glob("tradetape.sqlite*"):
        if not path.name.endswith("-key"):
            assert raw_key.encode() not in path.read_bytes(), path.name


def test_rotation_rewraps_every_data_key_under_a_new_master_key(tmp_path: Path,
                                                                capsys) -> None:
    database = tmp_path / "tradetape.sqlite"
    url = f"sqlite:///{database}"
    alice, _ = with_alice(url)
    master = database.with_name("tradetape.sqlite.master-key")
    before = master.read_text()

    assert main(["keys", "rotate", "--database", url]) == 0

    out = capsys.readouterr().out
    assert "1 of 1 data keys re-wrapped" in out and str(master) in out
    assert master.read_text() != before and stat.S_IMODE(master.stat().st_mode) == 0o600
    assert not master.with_name(master.name + ".next").exists()
    identity = opened(url)
    try:
        assert identity.login(ALICE, PASSWORD).user.display_name == "Alice"
    finally:
        identity.close()
    master.write_text(before)  # the old master key opens nothing any more
    with pytest.raises(DomainError, match="MASTER_KEY_UNKNOWN"):
        opened(url).get_user(alice)


def test_rotation_with_keys_from_the_environment_needs_the_new_key(
        tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'tradetape.sqlite'}"
    old, new = "old-master-key-0123456789-abcdefghijklmnop", "new-master-key-0123456789-abcdefgh"
    monkeypatch.setenv(MASTER_KEY_ENV, old)
    with_alice(url)
    assert not list(tmp_path.glob("*.master-key"))

    with pytest.raises(DomainError, match="NEW_MASTER_KEY_REQUIRED"):
        rotate_master_key(url)
    monkeypatch.setenv(NEW_MASTER_KEY_ENV, new)
    done = rotate_master_key(url)

    assert (done.rewrapped, done.where) == (1, f"${NEW_MASTER_KEY_ENV} (now set "
                                               f"{MASTER_KEY_ENV} to it)")
    monkeypatch.setenv(MASTER_KEY_ENV, new)
    monkeypatch.delenv(NEW_MASTER_KEY_ENV)
    identity = opened(url)
    try:
        assert identity.login(ALICE, PASSWORD).user.display_name == "Alice"
    finally:
        identity.close()


def test_a_new_secret_ends_every_session_and_keeps_every_login(tmp_path: Path) -> None:
    database = tmp_path / "tradetape.sqlite"
    url = f"sqlite:///{database}"
    _, token = with_alice(url)
    database.with_name("tradetape.sqlite.secret-key").unlink()  # rotated: a new one is made

    identity = opened(url)
    try:
        with pytest.raises(AuthenticationError):
            identity.authenticate(token)
        assert identity.login(ALICE, PASSWORD).user.email == ALICE.lower()  # index rebuilt
    finally:
        identity.close()


def test_on_postgresql_the_keys_live_in_the_key_directory(postgres_url: str, tmp_path: Path,
                                                         monkeypatch) -> None:
    monkeypatch.setenv(KEY_DIR_ENV, str(tmp_path / "keys"))
    alice, token = with_alice(postgres_url)

    keys = sorted(p.name.rpartition(".")[2] for p in (tmp_path / "keys").iterdir())
    assert keys == ["audit-key", "master-key", "secret-key"]
    identity = opened(postgres_url)
    try:
        rows = identity._keys._keys.items()
        assert [owner for owner, stored in rows if not stored.startswith("w1.")] == []
        assert identity.authenticate(token).user_id == alice
    finally:
        identity.close()
    monkeypatch.setenv(KEY_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(DomainError, match="MASTER_KEY_MISSING"):
        opened(postgres_url)


# --- helpers ----------------------------------------------------------------------------------


def _session_of(identity, user_id: UUID) -> UUID:
    return next(iter(identity.trading.load(user_id, User).sessions))


def _opens(key: bytes, owner: UUID, sealed: str) -> bool:
    if len(key) != 32:
        return False
    raw = base64.urlsafe_b64decode(sealed.partition(".")[2])
    try:
        AESGCM(key).decrypt(raw[:12], raw[12:], f"tradetape:{owner}:email".encode())
        return True
    except Exception:
        return False


def _make_it_look_like_the_previous_version(database: Path) -> str:
    """The layout before this version: the secret in ``server_secrets``, data keys stored
    unwrapped (base64url), no key files. Returns Alice's unwrapped data key."""
    secret_file = database.with_name(database.name + ".secret-key")
    master_file = database.with_name(database.name + ".master-key")
    master = MasterKeys(master_file.read_text().strip())
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS server_secrets (name TEXT PRIMARY KEY, "
                     "secret TEXT NOT NULL)")
        conn.execute("INSERT INTO server_secrets VALUES ('server', ?)",
                     (secret_file.read_text().strip(),))
        raw = ""
        for owner, stored in conn.execute("SELECT user_id, data_key FROM user_data_keys"
                                          ).fetchall():
            raw = base64.urlsafe_b64encode(master.unwrap(UUID(owner), stored)).decode()
            conn.execute("UPDATE user_data_keys SET data_key = ? WHERE user_id = ?",
                         (raw, owner))
    secret_file.unlink()
    master_file.unlink()
    return raw

