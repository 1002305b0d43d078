"""Registration open to anyone (``Identity.sign_up``, the API's ``register``): it answers
alike for a registered and a new address, in content and in work, is rate-limited, and
bounds every string."""

from __future__ import annotations

import time
from dataclasses import asdict
from statistics import median

import pytest

from application.bootstrap import open_identity
from domain.credentials import WeakPasswordError
from domain.errors import DomainError
from tests.fakes import RecordingMailer
from tests.integration.identity.conftest import ALICE, PASSWORD, SECRET_KEY, World


def without_ids(view) -> dict:
    return {k: v for k, v in asdict(view).items() if k not in ("id", "paper_account_id")}


def test_a_registered_address_gets_the_answer_a_new_one_gets(world: World) -> None:
    alice = world.register_verified()
    stored = world.raw_events()

    again = world.identity.sign_up(" ALICE@example.com", PASSWORD, display_name="Al")
    assert world.raw_events() == stored  # nothing recorded for Alice's address
    new = world.identity.sign_up("bob@example.com", PASSWORD, display_name="Al")

    assert without_ids(again) == {**without_ids(new), "email": "alice@example.com"}
    assert again.id not in (alice, new.id)
    assert world.identity.get_user(alice).display_name is None
    told = world.mailer.last_to("alice@example.com")
    assert "already has an account" in told.body and "reset-password" in told.body
    assert "Verify" in world.mailer.last_to("bob@example.com").subject


def test_an_unverified_owner_is_sent_a_fresh_verification_instead(world: World) -> None:
    alice = world.identity.sign_up(ALICE, PASSWORD).id
    first = world.mailer.last_to("alice@example.com").token

    world.identity.sign_up(ALICE, PASSWORD)

    second = world.mailer.last_to("alice@example.com").token
    assert second != first
    assert world.identity.verify_email(second).id == alice


def test_a_registered_address_costs_the_same_password_hash(tmp_path) -> None:
    """Timing told registered addresses apart (5 ms against 245 ms): both now pay for a
    bcrypt hash, which is most of the time either way."""
    identity = open_identity(f"sqlite:///{tmp_path / 'timing.sqlite'}", secret_key=SECRET_KEY,
                             mailer=RecordingMailer(), bcrypt_rounds=10)
    try:
        taken, fresh = [], []
        for n in range(3):
            identity.register(f"old{n}@example.com", PASSWORD, verified=True)
            began = time.perf_counter()
            identity.sign_up(f"old{n}@example.com", PASSWORD, ip=f"10.0.1.{n}")
            taken.append(time.perf_counter() - began)
            began = time.perf_counter()
            identity.sign_up(f"new{n}@example.com", PASSWORD, ip=f"10.0.2.{n}")
            fresh.append(time.perf_counter() - began)
    finally:
        identity.close()

    assert median(taken) > 0.5 * median(fresh), (taken, fresh)


def test_registrations_are_limited_per_address_and_per_asking_address(world: World) -> None:
    for n in range(3):
        world.identity.sign_up(ALICE, PASSWORD, ip=f"10.0.0.{n}")
    with pytest.raises(DomainError) as caught:
        world.identity.sign_up(ALICE, PASSWORD, ip="10.0.0.9")
    assert caught.value.code == "TOO_MANY_REGISTRATIONS"

    for n in range(10):
        world.identity.sign_up(f"user{n}@example.com", PASSWORD, ip="10.9.9.9")
    with pytest.raises(DomainError, match="TOO_MANY_REGISTRATIONS"):
        world.identity.sign_up("one-more@example.com", PASSWORD, ip="10.9.9.9")
    assert world.identity.sign_up("one-more@example.com", PASSWORD, ip="10.1.1.1").email == (
        "one-more@example.com")
    world.advance(hours=1)
    world.identity.sign_up("later@example.com", PASSWORD, ip="10.9.9.9")


@pytest.mark.parametrize(("field", "value", "code"), [
    ("display_name", "x" * 101, "DISPLAY_NAME_TOO_LONG"),
    ("display_name", "x" * 1_000_000, "DISPLAY_NAME_TOO_LONG"),
    ("email", "a" * 1_000_000 + "@example.com", "INVALID_EMAIL"),
    ("password", "Aa1" * 86, "PASSWORD_TOO_LONG"),
])
def test_every_string_is_bounded_and_nothing_is_stored_past_a_bound(
        world: World, field: str, value: str, code: str) -> None:
    given = {"email": ALICE, "password": PASSWORD, "display_name": "Alice", field: value}

    with pytest.raises(DomainError) as caught:
        world.identity.sign_up(given["email"], given["password"],
                               display_name=given["display_name"])

    codes = ([v.code for v in caught.value.violations]
             if isinstance(caught.value, WeakPasswordError) else [caught.value.code])
    assert codes == [code]
    assert world.raw_events() == [] and world.mailer.sent == []


def test_a_display_name_of_the_longest_length_is_kept(world: World) -> None:
    name = "é" * 100
    assert world.identity.sign_up(ALICE, PASSWORD, display_name=f" {name} ").display_name == (
        name)
