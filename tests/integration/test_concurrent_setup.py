"""Several processes opening one PostgreSQL store at the same moment (the server and a
``projections`` command, two replicas, two test workers): each creates the schema, the event
tables, the security tables and the view tables if they are missing, and every one of them
must come up and work. ``IF NOT EXISTS`` alone does not hold against a concurrent creator
(a unique violation on the catalog), nor does ``CREATE OR REPLACE FUNCTION`` ("tuple
concurrently updated"), so creation is serialised by an advisory lock.

Threads stand for the processes: each has its own connections, as a process would."""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from adapters.security.key_files import KEY_DIR_ENV, SECRET_KEY_ENV
from adapters.security.tables import open_tables
from application.bootstrap import open_identity, open_trading
from application.settings import parse_database_url
from projections.registry import PROJECTIONS
from projections.runner import Projector
from tests.fakes import RecordingMailer
from tests.projection_stubs import catch_up, one, view_store

OPENERS = 6
ROUNDS = 3


def open_and_use(url: str, me: int, start: threading.Barrier) -> UUID:
    """What a starting process does: the event store and its security tables (through
    Identity), the views; then it appends an event and reads it back."""
    start.wait()
    identity = open_identity(url, mailer=RecordingMailer(), bcrypt_rounds=4)
    try:
        store = view_store(url)
        try:
            Projector(identity.trading, store, [cls() for cls in PROJECTIONS.values()]).start()
        finally:
            store.close()
        account = identity.trading.open_account(owner_id=f"opener-{me}", exchange="binance",
                                                quote_asset="USDT")
        assert identity.trading.get_account(account).owner_id == f"opener-{me}"
        return account
    finally:
        identity.close()


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize("store", ["fresh", "ready"])
def test_processes_opening_one_postgres_store_at_once_all_come_up(
    postgres_url, store, round_, monkeypatch, tmp_path
):
    # The server secret and the master key are then generated in key files, each once.
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_DIR_ENV, str(tmp_path / "keys"))
    url = f"{postgres_url}&pool_size=1"  # OPENERS processes at once: spare the connections
    if store == "ready":  # set up by an earlier run: only the library's replacing remains
        open_trading(url).close()
    start = threading.Barrier(OPENERS, timeout=60)

    with ThreadPoolExecutor(OPENERS) as pool:
        futures = [pool.submit(open_and_use, url, me, start) for me in range(OPENERS)]
    failures = ["".join(traceback.format_exception(f.exception())) for f in futures
                if f.exception() is not None]

    assert failures == [], f"{len(failures)} of {OPENERS} openers failed:\n" + "\n".join(
        failures)
    accounts = [f.result() for f in futures]
    # All of them wrote to the one store: another process sees every account, in the log
    # and in the views; and all of them use the one secret and master key, kept outside it.
    app, views = open_trading(url), view_store(url)
    try:
        for me, account in enumerate(accounts):
            assert app.get_account(account).owner_id == f"opener-{me}"
        assert set(views.tracking()) == set(PROJECTIONS)
        catch_up(app, views)
        for me, account in enumerate(accounts):
            assert one(views, "balance_accounts", "account_id = ?",
                       (str(account),))["owner_id"] == f"opener-{me}"
    finally:
        views.close()
        app.close()
    tables = open_tables(parse_database_url(url))
    try:
        assert tables.table("server_secrets", "name", "secret").items() == []
    finally:
        tables.close()
    assert sorted(p.name.rpartition(".")[2] for p in (tmp_path / "keys").iterdir()) == [
        "audit-key", "master-key", "secret-key"]
    identity = open_identity(url, mailer=RecordingMailer(), bcrypt_rounds=4)
    identity.close()  # the master key fits the database (no MASTER_KEY_MISSING)
