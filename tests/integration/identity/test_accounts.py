"""Identity on every store: registration, verification, passwords, roles, forgetting, and
that personal data never sits in the log in clear."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from uuid import UUID

import pytest

from domain.accounts import ExchangeAccount
from domain.credentials import WeakPasswordError
from domain.errors import DomainError
from domain.users import AuthenticationError, Role, User
from tests.integration.identity.conftest import (
    ALICE,
    PASSWORD,
    T0,
    Opener,
    World,
    strings_in,
)


def test_registration_opens_a_paper_account_with_the_starting_balance(world: World) -> None:
    user_id = world.identity.register(ALICE, PASSWORD)

    user = world.identity.get_user(user_id)
    assert (user.email, user.role, user.email_verified, user.erased) == (
        "alice@example.com", Role.USER, False, False)
    assert user.registered_at == T0
    account = world.identity.trading.get_account(user.paper_account_id)
    assert (account.owner_id, account.exchange, account.quote_asset) == (
        str(user_id), "paper", "USDT")
    deposits = [e for e in world.identity.trading.events.get(account.id)
                if isinstance(e, ExchangeAccount.Deposited)]
    assert [(d.asset, d.amount) for d in deposits] == [("USDT", Decimal("10000"))]


def test_the_starting_balance_is_configurable(store_url: str, open_world: Opener) -> None:
    world = open_world(store_url, starting_balance=Decimal("250.50"))

    user = world.identity.get_user(world.identity.register(ALICE, PASSWORD))

    deposited = world.identity.trading.events.get(user.paper_account_id)
    assert [e.amount for e in deposited if isinstance(e, ExchangeAccount.Deposited)] == [
        Decimal("250.50")]


@pytest.mark.parametrize(
    ("password", "code"),
    [("Short1a", "PASSWORD_TOO_SHORT"), ("alllowercase1", "PASSWORD_NEEDS_UPPER"),
     ("ALLUPPERCASE1", "PASSWORD_NEEDS_LOWER"), ("NoDigitsHere", "PASSWORD_NEEDS_DIGIT")],
)
def test_registration_with_a_weak_password_names_the_rule_and_stores_nothing(
    world: World, password: str, code: str
) -> None:
    with pytest.raises(WeakPasswordError) as caught:
        world.identity.register(ALICE, password)

    assert [v.code for v in caught.value.violations] == [code]
    assert world.raw_events() == [] and world.mailer.sent == []


def test_registering_a_taken_email_in_any_case_is_refused(world: World) -> None:
    world.identity.register(ALICE, PASSWORD)
    stored = world.raw_events()

    with pytest.raises(DomainError) as caught:
        world.identity.register("  ALICE@example.COM ", PASSWORD)

    assert caught.value.code == "EMAIL_TAKEN"
    assert world.raw_events() == stored


def test_verification_token_works_for_24_hours_only(world: World) -> None:
    first = world.identity.register(ALICE, PASSWORD)
    second = world.identity.register("bob@example.com", PASSWORD)
    bob_token = world.mailer.last_to("bob@example.com").token

    world.advance(hours=23, minutes=59)
    assert world.identity.verify_email(world.mailer.last_to("alice@example.com").token
                                       ).email_verified
    world.advance(minutes=1)
    with pytest.raises(DomainError) as caught:
        world.identity.verify_email(bob_token)

    assert caught.value.code == "VERIFICATION_TOKEN_EXPIRED"
    assert world.identity.get_user(first).email_verified
    assert not world.identity.get_user(second).email_verified
    world.identity.request_verification("bob@example.com")
    assert world.identity.verify_email(world.mailer.last_to("bob@example.com").token
                                       ).email_verified


@pytest.mark.parametrize("token", ["", "garbage", "0" * 32 + ".x", "not-hex.secret"])
def test_a_malformed_or_unknown_verification_token_is_invalid(world: World, token: str) -> None:
    with pytest.raises(DomainError) as caught:
        world.identity.verify_email(token)

    assert caught.value.code == "VERIFICATION_TOKEN_INVALID"


def test_password_change_needs_the_current_one_and_ends_every_session(world: World) -> None:
    user_id = world.register_verified()
    tokens = world.identity.login(ALICE, PASSWORD)

    with pytest.raises(AuthenticationError, match="INVALID_CREDENTIALS"):
        world.identity.change_password(user_id, "Wrong-Password-1", "Brand-New-Pass-2")
    world.identity.change_password(user_id, PASSWORD, "Brand-New-Pass-2")

    with pytest.raises(AuthenticationError, match="SESSION_REVOKED"):
        world.identity.authenticate(tokens.access_token)
    with pytest.raises(AuthenticationError, match="INVALID_CREDENTIALS"):
        world.identity.login(ALICE, PASSWORD)
    assert world.identity.login(ALICE, "Brand-New-Pass-2").user.id == user_id


def test_password_reset_by_mailed_token(world: World) -> None:
    world.register_verified()
    sent = len(world.mailer.sent)

    world.identity.request_password_reset("nobody@example.com")  # says nothing, sends nothing
    world.identity.request_password_reset("not an email")
    assert len(world.mailer.sent) == sent
    world.identity.request_password_reset(ALICE)
    token = world.mailer.last_to("alice@example.com").token

    with pytest.raises(WeakPasswordError):
        world.identity.reset_password(token, "weak")
    world.identity.reset_password(token, "After-Reset-77")
    assert world.identity.login(ALICE, "After-Reset-77").user.email == "alice@example.com"
    with pytest.raises(DomainError, match="RESET_TOKEN_INVALID"):
        world.identity.reset_password(token, "Another-Reset-88")


def test_a_reset_token_expires_after_24_hours(world: World) -> None:
    world.register_verified()
    world.identity.request_password_reset(ALICE)

    world.advance(hours=24)

    with pytest.raises(DomainError, match="RESET_TOKEN_EXPIRED"):
        world.identity.reset_password(world.mailer.last_to("alice@example.com").token,
                                      "After-Reset-77")


def test_only_an_admin_changes_roles(world: World) -> None:
    admin = world.identity.register("root@example.com", PASSWORD, role="admin", verified=True)
    user_id = world.identity.register(ALICE, PASSWORD)

    with pytest.raises(DomainError, match="ADMIN_REQUIRED"):
        world.identity.set_role(admin, Role.USER, actor=str(user_id))
    assert world.identity.set_role(user_id, "provider", actor=str(admin)).role is Role.PROVIDER
    assert [u.email for u in world.identity.list_users()] == [
        "root@example.com", "alice@example.com"]


def test_forgetting_erases_the_person_but_not_the_history(world: World) -> None:
    user_id = world.register_verified(display_name="Alice Liddell")
    world.identity.login(ALICE, PASSWORD)
    before = world.raw_events()

    world.identity.forget(user_id)

    after = world.raw_events()
    assert after[: len(before)] == before  # every stored event still there, byte for byte
    assert [topic.rsplit(".", 1)[-1] for _, topic, _ in after[len(before):]] == ["Forgotten"]
    user = world.identity.get_user(user_id)
    assert (user.email, user.display_name, user.erased) == ("erased", "erased", True)
    with pytest.raises(AuthenticationError, match="INVALID_CREDENTIALS"):
        world.identity.login(ALICE, PASSWORD)
    assert world.identity.find_user(ALICE) is None
    world.identity.forget(user_id)  # again: nothing more to do
    assert len(world.raw_events()) == len(after)


def test_a_forgotten_email_can_register_again_as_a_new_person(world: World) -> None:
    first = world.register_verified()
    world.identity.forget(first)

    second = world.identity.register(ALICE, PASSWORD)

    assert second != first
    assert world.identity.get_user(second).email == "alice@example.com"


def test_no_clear_email_name_password_or_hash_is_ever_stored(world: World) -> None:
    user_id = world.register_verified(display_name="Alice Liddell")
    world.identity.login(ALICE, PASSWORD, ip="203.0.113.9")
    world.identity.change_password(user_id, PASSWORD, "Second-Password-2")
    world.identity.request_password_reset(ALICE)
    world.identity.reset_password(world.mailer.last_to("alice@example.com").token,
                                  "Third-Password-3")
    user = world.identity.trading.load(user_id, User)
    hashed = world.identity._keys.unseal(user_id, "password_hash", user.sealed_password_hash)
    assert hashed is not None and hashed.startswith("$2")

    stored = b"".join(state for _, _, state in world.raw_events()).lower()

    for secret in ("alice@example.com", "alice liddell", PASSWORD, "second-password-2",
                   "third-password-3", hashed, "$2b$", "203.0.113.9", "liddell"):
        assert secret.lower().encode() not in stored, secret


def test_no_service_method_returns_a_password_hash(world: World) -> None:
    identity = world.identity
    user_id = world.register_verified()
    tokens = identity.login(ALICE, PASSWORD)
    results = [
        identity.get_user(user_id), identity.find_user(ALICE), identity.list_users(), tokens,
        identity.refresh(tokens.refresh_token), identity.authenticate(
            identity.login(ALICE, PASSWORD).access_token),
        identity.confirm_email(user_id), identity.set_role(user_id, "provider"),
        identity.block(user_id), identity.unblock(user_id), identity.forget(user_id),
    ]

    for result in results:
        for path, text in strings_in(result):
            assert "password" not in path and not text.startswith(("$2", "v1.")), (path, text)


def test_the_email_index_is_rebuilt_from_events_and_keys(world: World) -> None:
    world.register_verified()
    gone = world.identity.register("bob@example.com", PASSWORD)
    world.identity.forget(gone)

    assert world.identity.rebuild_email_index() == 1

    assert world.identity.login(ALICE, PASSWORD).user.email == "alice@example.com"
    assert world.identity.find_user("bob@example.com") is None


def test_keys_and_index_outlive_the_process(persistent_url: str, open_world: Opener) -> None:
    user_id = open_world(persistent_url).register_verified()

    again = open_world(persistent_url, seed="second process")

    assert again.identity.find_user(ALICE).id == user_id  # type: ignore[union-attr]
    assert again.identity.login(ALICE, PASSWORD).user.id == UUID(str(user_id))


def test_a_registration_that_fails_midway_leaves_no_trace(world: World) -> None:
    settings = world.identity.settings
    world.identity.settings = replace(settings, quote_asset="not an asset")

    with pytest.raises(DomainError, match="INVALID_ASSET"):
        world.identity.register(ALICE, PASSWORD)

    assert world.raw_events() == [] and world.identity.find_user(ALICE) is None
    world.identity.settings = settings
    assert world.identity.get_user(world.identity.register(ALICE, PASSWORD)).email == (
        "alice@example.com")
