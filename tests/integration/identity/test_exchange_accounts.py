"""Live exchange accounts through the application, with the real ccxt binance class talking
to the local exchange simulator (``tests/exchange_simulator``), on memory, SQLite and
PostgreSQL: keys checked before anything is stored, stored sealed, read back for the live
runner, balances observed, removal refused while a bot runs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.exchanges.ccxt_connector import CcxtExchangeConnector
from api.cli import main
from application.bootstrap import open_exchange_accounts, open_identity
from application.exchange_accounts import ExchangeAccounts
from domain.accounts import ExchangeAccount
from domain.bots import BotStatus
from domain.errors import DomainError
from tests.exchange_simulator import running_simulator
from tests.fakes import RecordingMailer
from tests.integration.identity.conftest import ALICE, PASSWORD, World
from tests.stubs import a_config

BALANCES = {"USDT": "2500.5", "BTC": "0.125"}


@pytest.fixture
def sim() -> Iterator:
    with running_simulator(balances=BALANCES) as handle:
        yield handle


def accounts_on(world: World, sandbox_host: str, **options) -> ExchangeAccounts:
    connector = CcxtExchangeConnector(sandbox_host=sandbox_host, timeout_ms=3000)
    return open_exchange_accounts(world.identity, connector=connector, **options)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def log_head(world: World) -> int:
    return world.identity.trading.recorder.max_notification_id() or 0


def test_right_keys_store_a_sandbox_account_with_the_exchanges_balances(world, sim) -> None:
    alice = world.register_verified()
    accounts = accounts_on(world, sim.url)
    added = accounts.add(alice, exchange="Binance", sandbox=True, api_key=sim.api_key,
                         secret=sim.secret, name="testnet")
    assert (added.exchange, added.sandbox, added.name, added.status) == (
        "binance", True, "testnet", "ok")
    assert {a: b.free for a, b in added.balances.items()} == {
        "BTC": Decimal("0.125"), "USDT": Decimal("2500.5")}
    assert added.last_sync_at == world.clock.current
    listed = accounts.list(alice)
    assert [(a.kind.value, a.sandbox) for a in listed] == [("paper", False), ("live", True)]
    assert listed[1] == added


def test_stored_keys_are_ciphertext_and_unseal_for_the_live_runner(world, sim) -> None:
    alice = world.register_verified()
    accounts = accounts_on(world, sim.url)
    account_id = accounts.add(alice, exchange="binance", sandbox=True, api_key=sim.api_key,
                              secret=sim.secret, password="pass-phrase-42").id
    stored = b"".join(state for _, _, state in world.raw_events())
    for key in (sim.api_key, sim.secret, "pass-phrase-42"):
        assert key.encode() not in stored
    keys = accounts.credentials(account_id)
    assert (keys.api_key, keys.secret, keys.password) == (sim.api_key, sim.secret,
                                                           "pass-phrase-42")
    assert sim.api_key not in repr(keys)
    assert accounts.account(account_id).sandbox is True


@pytest.mark.parametrize("wrong", ["secret", "api_key"])
def test_wrong_keys_are_auth_failed_and_store_nothing(world, sim, wrong) -> None:
    alice = world.register_verified()
    keys = {"api_key": sim.api_key, "secret": sim.secret, wrong: "not-the-right-one-123"}
    before = log_head(world)
    with pytest.raises(DomainError) as refused:
        accounts_on(world, sim.url).add(alice, exchange="binance", sandbox=True, **keys)
    assert refused.value.code == "EXCHANGE_AUTH_FAILED"
    assert "not-the-right-one-123" not in str(refused.value)
    assert sim.secret not in str(refused.value)
    assert log_head(world) == before
    assert [a.kind.value for a in accounts_on(world, sim.url).list(alice)] == ["paper"]


def test_a_closed_port_is_unavailable_and_stores_nothing(world) -> None:
    alice = world.register_verified()
    before = log_head(world)
    with pytest.raises(DomainError) as refused:
        accounts_on(world, closed_port_url()).add(alice, exchange="binance", sandbox=True,
                                                  api_key="k" * 20, secret="s" * 20)
    assert refused.value.code == "EXCHANGE_UNAVAILABLE"
    assert log_head(world) == before


def test_an_unknown_exchange_is_not_supported_and_stores_nothing(world, sim) -> None:
    alice = world.register_verified()
    before = log_head(world)
    with pytest.raises(DomainError) as refused:
        accounts_on(world, sim.url).add(alice, exchange="binancex", sandbox=True,
                                        api_key=sim.api_key, secret=sim.secret)
    assert refused.value.code == "EXCHANGE_NOT_SUPPORTED"
    assert log_head(world) == before


def test_sync_records_what_the_exchange_reports_now(world, sim) -> None:
    alice = world.register_verified()
    accounts = accounts_on(world, sim.url)
    account_id = accounts.add(alice, exchange="binance", sandbox=True, api_key=sim.api_key,
                              secret=sim.secret).id
    sim.deposit("ETH", "3")
    world.advance(minutes=5)
    synced = accounts.sync(alice, account_id)
    assert synced.balances["ETH"].free == Decimal("3")
    assert synced.last_sync_at == synced.checked_at == world.clock.current
    observed = [e for e in _events_of(world, account_id)
                if isinstance(e, ExchangeAccount.BalanceObserved)]
    assert {(e.asset, e.free) for e in observed[-3:]} == {
        ("BTC", Decimal("0.125")), ("ETH", Decimal("3")), ("USDT", Decimal("2500.5"))}


def test_a_failed_sync_says_so_and_keeps_the_last_good_sync_time(world, sim) -> None:
    alice = world.register_verified()
    good = accounts_on(world, sim.url)
    account_id = good.add(alice, exchange="binance", sandbox=True, api_key=sim.api_key,
                          secret=sim.secret).id
    synced_at = world.clock.current
    world.advance(minutes=1)
    with pytest.raises(DomainError) as refused:
        accounts_on(world, closed_port_url()).sync(alice, account_id)
    assert refused.value.code == "EXCHANGE_UNAVAILABLE"
    view = good.get(alice, account_id)
    assert (view.status, view.checked_at, view.last_sync_at) == (
        "unreachable", world.clock.current, synced_at)


def test_removal_is_refused_while_a_bot_runs_on_the_account(world, sim) -> None:
    alice = world.register_verified()
    accounts = accounts_on(world, sim.url)
    account_id = accounts.add(alice, exchange="binance", sandbox=True, api_key=sim.api_key,
                              secret=sim.secret).id
    trading = world.identity.trading
    bot_id = trading.create_bot(owner_id=str(alice), name="live one", config=a_config(),
                                exchange_account_id=str(account_id))
    trading.start_bot(bot_id)
    with pytest.raises(DomainError) as refused:
        accounts.remove(alice, account_id)
    assert refused.value.code == "ACCOUNT_IN_USE" and "live one" in refused.value.message
    trading.pause_bot(bot_id)
    assert trading.get_bot(bot_id).status is BotStatus.PAUSED
    accounts.remove(alice, account_id)
    assert [a.kind.value for a in accounts.list(alice)] == ["paper"]
    for refused_call in (lambda: accounts.credentials(account_id),
                         lambda: accounts.check_can_trade(account_id)):
        with pytest.raises(DomainError) as gone:
            refused_call()
        assert gone.value.code == "ACCOUNT_REMOVED"


def test_another_users_account_is_not_found(world, sim) -> None:
    alice = world.register_verified()
    bob = world.register_verified("bob@example.com")
    accounts = accounts_on(world, sim.url)
    account_id = accounts.add(alice, exchange="binance", sandbox=True, api_key=sim.api_key,
                              secret=sim.secret).id
    for call in (lambda: accounts.get(bob, account_id),
                 lambda: accounts.remove(bob, account_id),
                 lambda: accounts.sync(bob, account_id)):
        with pytest.raises(DomainError) as refused:
            call()
        assert refused.value.code == "NOT_FOUND"


def _events_of(world: World, account_id: UUID) -> list:
    return list(world.identity.trading.events.get(account_id))


@pytest.fixture
def keyed_store(persistent_store_url, monkeypatch):
    """A store whose keys live in files beside it (no key settings)."""
    for name in ("TRADETAPE_MASTER_KEY", "TRADETAPE_NEW_MASTER_KEY", "TRADETAPE_KEY_DIR"):
        monkeypatch.delenv(name, raising=False)
    return persistent_store_url


def test_keys_still_unseal_after_the_master_key_rotates(keyed_store, sim, capsys) -> None:
    identity = open_identity(keyed_store, mailer=RecordingMailer(), bcrypt_rounds=4)
    try:
        alice = identity.register(ALICE, PASSWORD, verified=True)
        connector = CcxtExchangeConnector(sandbox_host=sim.url)
        account_id = open_exchange_accounts(identity, connector=connector).add(
            alice, exchange="binance", sandbox=True, api_key=sim.api_key,
            secret=sim.secret).id
    finally:
        identity.close()
    assert main(["keys", "rotate", "--database", keyed_store]) == 0
    assert "1 of 1 data keys re-wrapped" in capsys.readouterr().out
    identity = open_identity(keyed_store, mailer=RecordingMailer(), bcrypt_rounds=4)
    try:
        accounts = open_exchange_accounts(identity, connector=CcxtExchangeConnector(
            sandbox_host=sim.url))
        keys = accounts.credentials(account_id)
        assert (keys.api_key, keys.secret) == (sim.api_key, sim.secret)
        assert accounts.sync(alice, account_id).status == "ok"  # and the exchange agrees
    finally:
        identity.close()
