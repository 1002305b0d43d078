"""The User aggregate: given past events, a command, then the new events and state."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from domain.credentials import token_digest
from domain.errors import DomainError
from domain.users import SESSION_LIFETIME, AuthenticationError, Role, User
from tests.stubs import a_cause, at, replay

USER_ID = UUID("00000000-0000-4000-8000-0000000005e1")
ADMIN = "00000000-0000-4000-8000-0000000000ad"
ACCOUNT = UUID("00000000-0000-4000-8000-0000000000ac")
SESSION = UUID("00000000-0000-4000-8000-00000000005a")
HOURS_24 = 24 * 60


def a_user(role: Role = Role.USER, verification: str | None = "verify-me") -> User:
    user = User.register(USER_ID, a_cause(0, actor=str(USER_ID)), role=role,
                         sealed_email="v1.sealed-email", sealed_password_hash="v1.sealed-hash",
                         paper_account_id=ACCOUNT)
    if verification:
        user.issue_verification(a_cause(0), token_digest(verification))
    return user


def types(user: User) -> list[str]:
    return [type(event).__name__ for event in user.collect_events()]


def with_session(user: User, refresh: str = "rt-1") -> User:
    user.start_session(a_cause(1, actor=str(USER_ID)), SESSION, token_digest(refresh))
    return user


def test_registration_records_only_sealed_personal_data_and_a_token_digest() -> None:
    user = a_user()

    registered, issued = user.collect_events()
    assert (registered.sealed_email, registered.sealed_password_hash) == (
        "v1.sealed-email", "v1.sealed-hash")
    assert registered.role == "user"
    assert issued.token_digest == token_digest("verify-me")
    assert issued.expires_at == at(0) + timedelta(hours=24)
    assert not hasattr(registered, "email")


def test_registration_with_an_unknown_role_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        a_user(role="superuser")  # type: ignore[arg-type]

    assert caught.value.code == "INVALID_ROLE"


def test_verification_with_the_mailed_token_within_24_hours_verifies() -> None:
    user = a_user()
    user.collect_events()

    user.verify_email(a_cause(HOURS_24 - 1), token_digest("verify-me"))

    assert types(user) == ["EmailVerified"]
    assert user.email_verified and user.verification is None


def test_verification_after_24_hours_is_refused_and_records_nothing() -> None:
    user = a_user()
    user.collect_events()

    with pytest.raises(DomainError) as caught:
        user.verify_email(a_cause(HOURS_24), token_digest("verify-me"))

    assert caught.value.code == "VERIFICATION_TOKEN_EXPIRED"
    assert types(user) == [] and not user.email_verified


def test_verification_with_another_token_is_refused() -> None:
    user = a_user()

    with pytest.raises(DomainError) as caught:
        user.verify_email(a_cause(1), token_digest("guess"))

    assert caught.value.code == "VERIFICATION_TOKEN_INVALID"


def test_a_new_verification_token_replaces_the_old_one() -> None:
    user = a_user()
    user.issue_verification(a_cause(5), token_digest("second"))

    with pytest.raises(DomainError):
        user.verify_email(a_cause(6), token_digest("verify-me"))
    user.verify_email(a_cause(6), token_digest("second"))

    assert user.email_verified


def test_session_start_refresh_and_end() -> None:
    user = with_session(a_user())

    user.refresh_session(a_cause(2), SESSION, token_digest("rt-1"), token_digest("rt-2"))
    session = user.sessions[SESSION]
    assert (session.refresh_digest, session.previous_digest) == (
        token_digest("rt-2"), token_digest("rt-1"))
    assert session.expires_at == at(2) + SESSION_LIFETIME

    user.end_session(a_cause(3), SESSION, "logout")
    assert user.sessions == {}
    assert types(user)[-3:] == ["SessionStarted", "SessionRefreshed", "SessionEnded"]


def test_refresh_with_a_spent_token_is_refused() -> None:
    user = with_session(a_user())
    user.refresh_session(a_cause(2), SESSION, token_digest("rt-1"), token_digest("rt-2"))

    with pytest.raises(AuthenticationError):
        user.refresh_session(a_cause(3), SESSION, token_digest("rt-1"), token_digest("rt-3"))


def test_a_lapsed_session_cannot_be_refreshed() -> None:
    user = with_session(a_user())
    after = 1 + int(SESSION_LIFETIME.total_seconds() // 60)

    with pytest.raises(AuthenticationError) as caught:
        user.refresh_session(a_cause(after), SESSION, token_digest("rt-1"), token_digest("x"))

    assert caught.value.code == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    "end_all",
    [
        lambda u: u.block(a_cause(5, actor=ADMIN)),
        lambda u: u.change_password(a_cause(5), "v1.new-hash"),
        lambda u: u.forget(a_cause(5, actor=ADMIN)),
    ],
    ids=["block", "password change", "forget"],
)
def test_blocking_changing_the_password_and_forgetting_end_every_session(end_all) -> None:
    user = with_session(a_user())

    end_all(user)

    assert user.sessions == {}
    assert replay(user.collect_events()).sessions == {}


def test_a_blocked_user_cannot_start_a_session_until_unblocked() -> None:
    user = a_user()
    user.block(a_cause(1, actor=ADMIN))

    with pytest.raises(AuthenticationError) as caught:
        with_session(user)
    assert caught.value.code == "ACCOUNT_BLOCKED"

    user.unblock(a_cause(2, actor=ADMIN))
    assert SESSION in with_session(user).sessions


def test_a_user_cannot_block_themselves_nor_change_their_own_role() -> None:
    user = a_user(role=Role.ADMIN)

    with pytest.raises(DomainError, match="CANNOT_BLOCK_SELF"):
        user.block(a_cause(1, actor=str(USER_ID)))
    with pytest.raises(DomainError, match="CANNOT_CHANGE_OWN_ROLE"):
        user.change_role(a_cause(1, actor=str(USER_ID)), Role.USER)


def test_blocking_twice_and_setting_the_same_role_record_nothing() -> None:
    user = a_user()
    user.block(a_cause(1, actor=ADMIN))
    user.collect_events()

    user.block(a_cause(2, actor=ADMIN))
    user.change_role(a_cause(2, actor=ADMIN), Role.USER)

    assert types(user) == []


def test_role_change_is_stored_as_its_value() -> None:
    user = a_user()

    user.change_role(a_cause(1, actor=ADMIN), "provider")

    assert user.role is Role.PROVIDER
    assert user.collect_events()[-1].role == "provider"


def test_password_reset_needs_the_latest_token_within_24_hours() -> None:
    user = with_session(a_user())
    user.request_password_reset(a_cause(10), token_digest("reset-1"))

    with pytest.raises(DomainError, match="RESET_TOKEN_INVALID"):
        user.reset_password(a_cause(11), token_digest("nope"), "v1.new")
    with pytest.raises(DomainError, match="RESET_TOKEN_EXPIRED"):
        user.reset_password(a_cause(10 + HOURS_24), token_digest("reset-1"), "v1.new")
    user.reset_password(a_cause(12), token_digest("reset-1"), "v1.new")

    assert user.sealed_password_hash == "v1.new"
    assert user.reset is None and user.sessions == {}
    with pytest.raises(DomainError, match="RESET_TOKEN_INVALID"):  # used once only
        user.reset_password(a_cause(13), token_digest("reset-1"), "v1.newer")


def test_a_forgotten_user_can_do_nothing_and_forgetting_again_records_nothing() -> None:
    user = a_user()
    user.forget(a_cause(1, actor=ADMIN))
    user.collect_events()

    user.forget(a_cause(2, actor=ADMIN))
    assert types(user) == []
    with pytest.raises(DomainError, match="USER_ERASED"):
        user.change_password(a_cause(3), "v1.x")
    with pytest.raises(AuthenticationError):
        with_session(user)


def test_replaying_the_events_rebuilds_the_same_user() -> None:
    user = with_session(a_user())
    user.verify_email(a_cause(2), token_digest("verify-me"))
    user.change_role(a_cause(3, actor=ADMIN), Role.PROVIDER)
    events = user.collect_events()

    rebuilt = replay(events)

    assert (rebuilt.role, rebuilt.email_verified, rebuilt.sessions) == (
        Role.PROVIDER, True, user.sessions)


def test_a_password_change_keeps_only_the_session_it_was_made_in() -> None:
    other = UUID("00000000-0000-4000-8000-00000000005b")
    user = with_session(a_user())
    user.start_session(a_cause(2, actor=str(USER_ID)), other, token_digest("rt-2"))

    user.change_password(a_cause(3), "v1.new-hash", kept_session_id=SESSION)

    assert set(user.sessions) == {SESSION}
    assert set(replay(user.collect_events()).sessions) == {SESSION}


def test_a_password_change_stored_before_sessions_were_kept_ends_every_session() -> None:
    state = {"sealed_password_hash": "v1.new-hash"}

    User.PasswordChanged.upcast_v1_v2(state)

    assert state == {"sealed_password_hash": "v1.new-hash", "kept_session_id": None}
