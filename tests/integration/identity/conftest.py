"""An Identity on a real store with a clock the test moves, predictable secrets and a mailer
that keeps what it sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.clock import SequentialIds, SettableClock
from application.bootstrap import open_identity
from application.identity import Identity
from tests.fakes import CountingSecrets, RecordingMailer

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "Correct-Horse-9"
ALICE = "Alice@Example.com"


@dataclass
class World:
    identity: Identity
    clock: SettableClock
    mailer: RecordingMailer

    def advance(self, **delta: float) -> None:
        self.clock.current += timedelta(**delta)

    def raw_events(self) -> list[tuple[int, str, bytes]]:
        """Every stored event as the store holds it: (position, topic, bytes)."""
        recorder = self.identity.trading.recorder
        return [(n.id, n.topic, bytes(n.state))
                for n in recorder.select_notifications(start=None, limit=100_000)]

    def register_verified(self, email: str = ALICE, password: str = PASSWORD, **kw: Any):
        user_id = self.identity.register(email, password, **kw)
        self.identity.verify_email(self.mailer.last_to(email.lower()).token)
        return user_id


Opener = Callable[..., World]


@pytest.fixture
def open_world() -> Iterator[Opener]:
    opened: list[Identity] = []

    def open_(url: str, seed: str = "identity", **options: Any) -> World:
        clock, mailer = SettableClock(T0), RecordingMailer()
        identity = open_identity(url, clock=clock, ids=SequentialIds(seed),
                                 secrets=CountingSecrets(seed), mailer=mailer,
                                 secret_key=SECRET_KEY, bcrypt_rounds=4, **options)
        opened.append(identity)
        return World(identity, clock, mailer)

    yield open_
    for identity in opened:
        identity.close()


@pytest.fixture
def world(store_url: str, open_world: Opener) -> World:
    return open_world(store_url)


def strings_in(value: Any) -> Iterator[tuple[str, str]]:
    """Every (field path, text) inside a returned value, however nested."""
    if isinstance(value, str):
        yield "", value
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            for path, text in strings_in(getattr(value, f.name)):
                yield f"{f.name}.{path}".rstrip("."), text
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
    elif value is not None:
        yield type(value).__name__, str(value)


@pytest.fixture(params=["sqlite", "postgres"])
def persistent_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A store that outlives the process (every store a user can choose but ``memory``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    return request.getfixturevalue("postgres_url")
