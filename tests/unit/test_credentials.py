"""Password and email rules: one named error per broken rule."""

from __future__ import annotations

import pytest

from domain.credentials import (
    InvalidEmailError,
    NewPassword,
    WeakPasswordError,
    digests_match,
    normalize_email,
    password_violations,
    token_digest,
)


def codes(password: str) -> list[str]:
    return [violation.code for violation in password_violations(password)]


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Abcdefgh1", ["PASSWORD_TOO_SHORT"]),
        ("abcdefghi1", ["PASSWORD_NEEDS_UPPER"]),
        ("ABCDEFGHI1", ["PASSWORD_NEEDS_LOWER"]),
        ("Abcdefghij", ["PASSWORD_NEEDS_DIGIT"]),
        ("A" * 200 + "a" * 56 + "1", ["PASSWORD_TOO_LONG"]),
        ("short", ["PASSWORD_TOO_SHORT", "PASSWORD_NEEDS_UPPER", "PASSWORD_NEEDS_DIGIT"]),
        ("", ["PASSWORD_TOO_SHORT", "PASSWORD_NEEDS_UPPER", "PASSWORD_NEEDS_LOWER",
              "PASSWORD_NEEDS_DIGIT"]),
    ],
)
def test_each_broken_password_rule_has_its_own_code(password: str, expected: list[str]) -> None:
    assert codes(password) == expected


@pytest.mark.parametrize("password", ["Abcdefghi1", "Ünïcode-Pässwört-9", "Correct Horse 9x"])
def test_a_password_meeting_every_rule_is_accepted(password: str) -> None:
    assert password_violations(password) == []
    assert NewPassword(password).text == password


def test_new_password_refuses_a_weak_one_listing_every_violation() -> None:
    with pytest.raises(WeakPasswordError) as caught:
        NewPassword("abc")

    assert [v.code for v in caught.value.violations] == [
        "PASSWORD_TOO_SHORT", "PASSWORD_NEEDS_UPPER", "PASSWORD_NEEDS_DIGIT"]
    assert caught.value.code == "WEAK_PASSWORD"


def test_new_password_never_shows_its_text() -> None:
    assert "Abcdefghi1" not in repr(NewPassword("Abcdefghi1"))


@pytest.mark.parametrize(
    ("email", "normal"),
    [("  Alice@Example.COM ", "alice@example.com"), ("a.b+tag@sub.example.org",
                                                      "a.b+tag@sub.example.org")],
)
def test_an_email_is_trimmed_and_lower_cased(email: str, normal: str) -> None:
    assert normalize_email(email) == normal


@pytest.mark.parametrize("email", ["", "alice", "alice@", "@example.com", "alice@localhost",
                                   "al ice@example.com", "a@" + "b" * 250 + ".com"])
def test_a_malformed_email_is_refused(email: str) -> None:
    with pytest.raises(InvalidEmailError):
        normalize_email(email)


def test_tokens_are_remembered_by_their_sha256_and_compared_in_constant_time() -> None:
    digest = token_digest("abc")

    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert digests_match(digest, token_digest("abc"))
    assert not digests_match(digest, token_digest("abd"))
    assert not digests_match(None, digest)
