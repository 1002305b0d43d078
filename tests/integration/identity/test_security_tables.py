"""The tables beside the log, on every store: key-value contract, data keys, email index,
and the server secret."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from adapters.security.email_index import HmacEmailIndex
from adapters.security.key_files import SECRET_KEY_ENV, KeySource
from adapters.security.keys import AesGcmDataKeyStore, SealedDataError
from adapters.security.server_secret import load_server_secret
from adapters.security.tables import Tables, open_tables
from application.settings import parse_database_url, prepare
from domain.errors import DomainError

ALICE, BOB = UUID(int=1), UUID(int=2)


@pytest.fixture
def tables(store_url: str) -> Iterator[Tables]:
    database = parse_database_url(store_url)
    prepare(database)
    opened = open_tables(database)
    yield opened
    opened.close()


def test_a_table_keeps_unique_keys_and_optionally_unique_values(tables: Tables) -> None:
    rows = tables.table("contract", "name", "owner", unique_value=True)

    assert rows.insert("a", "1") and rows.insert("b", "2")
    assert not rows.insert("a", "3")  # key taken: nothing changes
    assert not rows.insert("c", "2")  # unique value taken
    assert (rows.get("a"), rows.get("zzz")) == ("1", None)
    rows.delete_value("2")
    rows.delete("nothing")
    assert rows.items() == [("a", "1")]
    rows.clear()
    assert rows.items() == []


def test_sealed_text_opens_only_for_its_owner_and_purpose(tables: Tables) -> None:
    keys = AesGcmDataKeyStore(tables)
    keys.create_key(ALICE)
    keys.create_key(BOB)

    sealed = keys.seal(ALICE, "email", "alice@example.com")

    assert "alice" not in sealed and sealed != keys.seal(ALICE, "email", "alice@example.com")
    assert keys.unseal(ALICE, "email", sealed) == "alice@example.com"
    for owner, purpose in ((BOB, "email"), (ALICE, "display_name")):
        with pytest.raises(SealedDataError):
            keys.unseal(owner, purpose, sealed)


def test_a_destroyed_key_makes_everything_sealed_under_it_unreadable(tables: Tables) -> None:
    keys = AesGcmDataKeyStore(tables)
    keys.create_key(ALICE)
    sealed = keys.seal(ALICE, "email", "alice@example.com")

    keys.destroy_key(ALICE)
    keys.destroy_key(ALICE)  # again: not an error

    assert keys.unseal(ALICE, "email", sealed) is None
    with pytest.raises(DomainError, match="DATA_KEY_MISSING"):
        keys.seal(ALICE, "email", "again@example.com")


def test_a_user_has_one_data_key(tables: Tables) -> None:
    keys = AesGcmDataKeyStore(tables)
    keys.create_key(ALICE)

    with pytest.raises(DomainError, match="DATA_KEY_EXISTS"):
        keys.create_key(ALICE)


def test_the_email_index_finds_by_any_case_and_stores_no_address(tables: Tables) -> None:
    index = HmacEmailIndex(tables, b"k" * 32)

    assert index.claim("Alice@Example.com", ALICE)
    assert index.claim("alice@example.com", ALICE)  # one's own again
    assert not index.claim("ALICE@example.com", BOB)
    assert index.find(" alice@EXAMPLE.com ") == ALICE
    stored = tables.table("user_emails", "email_hmac", "user_id", unique_value=True).items()
    assert "alice" not in repr(stored)
    index.release(ALICE)
    assert index.find("alice@example.com") is None


def test_the_server_secret_is_made_once_in_its_key_file_not_in_the_database(
        tables: Tables, tmp_path) -> None:
    source = KeySource(SECRET_KEY_ENV, tmp_path / "db.secret-key", {})
    first = load_server_secret(tables, {}, source)

    assert load_server_secret(tables, {}, source) == first and len(first) >= 32
    assert source.path.read_text().strip().encode() == first
    assert first.decode() not in repr(tables.table("server_secrets", "name", "secret").items())
    configured = {"TRADETAPE_SECRET_KEY": "x" * 32}
    assert load_server_secret(tables, configured, KeySource(SECRET_KEY_ENV, source.path,
                                                            configured)) == b"x" * 32
    with pytest.raises(DomainError, match="INVALID_SECRET_KEY"):
        short = {"TRADETAPE_SECRET_KEY": "short"}
        load_server_secret(tables, short, KeySource(SECRET_KEY_ENV, source.path, short))
