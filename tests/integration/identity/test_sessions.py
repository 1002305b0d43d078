"""Identity on every store: login, refresh with rotation, logout, authentication, blocking
and the failed-login limits."""

from __future__ import annotations

import pytest

from domain.bots import BotStatus
from domain.users import AuthenticationError, Role
from tests.integration.conftest import CONFIG
from tests.integration.identity.conftest import ALICE, PASSWORD, T0, World


def code_of(call, *args) -> str:
    with pytest.raises(AuthenticationError) as caught:
        call(*args)
    return caught.value.code


def test_login_gives_tokens_that_authenticate_the_user(world: World) -> None:
    user_id = world.register_verified()

    tokens = world.identity.login(" alice@EXAMPLE.com", PASSWORD, ip="198.51.100.7")

    assert tokens.user.id == user_id and tokens.user.email == "alice@example.com"
    assert tokens.expires_at == T0.replace(minute=15)
    principal = world.identity.authenticate(tokens.access_token)
    assert (principal.user_id, principal.role, principal.email_verified) == (
        user_id, Role.USER, True)


def test_unknown_email_and_wrong_password_get_the_same_answer(world: World) -> None:
    world.register_verified()

    with pytest.raises(AuthenticationError) as unknown:
        world.identity.login("nobody@example.com", PASSWORD)
    with pytest.raises(AuthenticationError) as wrong:
        world.identity.login(ALICE, "Wrong-Password-1")

    assert (unknown.value.code, str(unknown.value)) == (wrong.value.code, str(wrong.value))
    assert wrong.value.code == "INVALID_CREDENTIALS"


def test_refresh_rotates_and_a_spent_refresh_token_ends_the_session(world: World) -> None:
    world.register_verified()
    first = world.identity.login(ALICE, PASSWORD)

    world.advance(minutes=10)
    second = world.identity.refresh(first.refresh_token)

    assert second.refresh_token != first.refresh_token
    assert second.expires_at == T0.replace(minute=25)
    assert world.identity.authenticate(second.access_token).user_id == first.user.id
    # The old one is refused; as it may have been stolen, the whole session ends with it.
    assert code_of(world.identity.refresh, first.refresh_token) == "SESSION_REVOKED"
    assert code_of(world.identity.refresh, second.refresh_token) == "SESSION_REVOKED"
    assert code_of(world.identity.authenticate, second.access_token) == "SESSION_REVOKED"


def test_an_expired_access_token_is_refused_until_refreshed(world: World) -> None:
    world.register_verified()
    tokens = world.identity.login(ALICE, PASSWORD)

    world.advance(minutes=15)

    assert code_of(world.identity.authenticate, tokens.access_token) == "TOKEN_EXPIRED"
    fresh = world.identity.refresh(tokens.refresh_token)
    assert world.identity.authenticate(fresh.access_token).user_id == tokens.user.id


def test_logout_by_access_or_refresh_token_ends_only_that_session(world: World) -> None:
    world.register_verified()
    laptop, phone, tablet = (world.identity.login(ALICE, PASSWORD) for _ in range(3))

    world.identity.logout(laptop.access_token)
    world.identity.logout(phone.refresh_token)
    world.identity.logout(phone.refresh_token)  # twice: nothing more to do

    assert code_of(world.identity.authenticate, laptop.access_token) == "SESSION_REVOKED"
    assert code_of(world.identity.refresh, laptop.refresh_token) == "SESSION_REVOKED"
    assert code_of(world.identity.authenticate, phone.access_token) == "SESSION_REVOKED"
    assert world.identity.authenticate(tablet.access_token).user_id == tablet.user.id


@pytest.mark.parametrize("token", [None, "", "at.e30.AAAA", "rt.x.y.z", "garbage"])
def test_a_missing_or_forged_token_requires_authentication(world: World, token) -> None:
    assert code_of(world.identity.authenticate, token) == "AUTHENTICATION_REQUIRED"


def test_a_tampered_access_token_is_refused(world: World) -> None:
    world.register_verified()
    prefix, payload, signature = world.identity.login(ALICE, PASSWORD).access_token.split(".")
    admin = world.identity.register("root@example.com", PASSWORD, role="admin", verified=True)
    other = world.identity.login("root@example.com", PASSWORD).access_token.split(".")[1]

    forged = f"{prefix}.{other}.{signature}"

    assert code_of(world.identity.authenticate, forged) == "AUTHENTICATION_REQUIRED"
    assert admin != world.identity.authenticate(f"{prefix}.{payload}.{signature}").user_id


def test_blocking_stops_the_tokens_and_pauses_only_that_users_running_bots(world: World) -> None:
    identity, trading = world.identity, world.identity.trading
    alice = world.register_verified()
    bob = world.register_verified("bob@example.com")
    tokens = identity.login(ALICE, PASSWORD)
    running, idle, bobs = (
        trading.create_bot(owner_id=str(owner), name=name, config=CONFIG,
                           exchange_account_id="paper")
        for owner, name in ((alice, "a1"), (alice, "a2"), (bob, "b1")))
    trading.start_bot(running)
    trading.start_bot(bobs)

    identity.block(alice)

    assert code_of(identity.authenticate, tokens.access_token) == "ACCOUNT_BLOCKED"
    assert code_of(identity.refresh, tokens.refresh_token) == "ACCOUNT_BLOCKED"
    assert code_of(identity.login, ALICE, PASSWORD) == "ACCOUNT_BLOCKED"
    assert code_of(identity.login, ALICE, "Wrong-Password-1") == "INVALID_CREDENTIALS"
    assert [trading.get_bot(b).status for b in (running, idle, bobs)] == [
        BotStatus.PAUSED, BotStatus.CREATED, BotStatus.RUNNING]
    identity.unblock(alice)
    assert identity.authenticate(identity.login(ALICE, PASSWORD).access_token).user_id == alice
    assert trading.get_bot(running).status is BotStatus.PAUSED  # their owner restarts them


def test_failed_logins_stop_the_guessing_address_not_the_owner(world: World) -> None:
    world.register_verified()
    for _ in range(5):
        assert code_of(world.identity.login, ALICE, "Wrong-Password-1", "10.0.0.1") == (
            "INVALID_CREDENTIALS")

    assert code_of(world.identity.login, ALICE, PASSWORD, "10.0.0.1") == "TOO_MANY_ATTEMPTS"
    assert world.identity.login_delay(ALICE) == 1  # the account is slowed down ...
    assert world.identity.login(ALICE, PASSWORD, "10.0.0.2").user.email == "alice@example.com"
    assert world.identity.login_delay(ALICE) == 0  # ... until its owner got in
    world.advance(minutes=15)
    assert world.identity.login(ALICE, PASSWORD, "10.0.0.1").user.email == "alice@example.com"


def test_failures_from_many_addresses_slow_the_account_without_locking_it(
        world: World) -> None:
    world.register_verified()
    for n in range(8):
        assert code_of(world.identity.login, ALICE, "Wrong-Password-1", f"10.0.0.{n}") == (
            "INVALID_CREDENTIALS")

    assert world.identity.login_delay(ALICE) == 8
    assert world.identity.login(ALICE, PASSWORD, "10.0.0.99").user.email == "alice@example.com"


def test_failed_logins_are_limited_per_ip(world: World) -> None:
    world.register_verified()
    for n in range(20):
        assert code_of(world.identity.login, f"guess{n}@example.com", PASSWORD,
                       "10.0.0.1") == "INVALID_CREDENTIALS"

    assert code_of(world.identity.login, ALICE, PASSWORD, "10.0.0.1") == "TOO_MANY_ATTEMPTS"
    assert world.identity.login(ALICE, PASSWORD, "10.0.0.2").user.email == "alice@example.com"


def test_a_successful_login_clears_its_accounts_failures(world: World) -> None:
    world.register_verified()
    for _ in range(4):
        code_of(world.identity.login, ALICE, "Wrong-Password-1")
    world.identity.login(ALICE, PASSWORD)

    for _ in range(4):
        code_of(world.identity.login, ALICE, "Wrong-Password-1")

    assert world.identity.login(ALICE, PASSWORD).user.email == "alice@example.com"
