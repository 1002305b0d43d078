"""What the identity service hands out: plain values, never an aggregate, a sealed field or
a password hash. And the log scans it needs until projections serve them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.utils import get_topic

from application.replay import read_log
from application.trading import Trading
from domain.bots import Bot, BotStatus
from domain.errors import ConcurrencyConflictError, InvalidTransitionError
from domain.ports import DataKeyStore
from domain.users import Role, User

ERASED = "erased"


@dataclass(frozen=True)
class UserView:
    """A user as people may see them. ``email`` is ``"erased"`` once the user is forgotten."""

    id: UUID
    email: str
    display_name: str | None
    role: Role
    email_verified: bool
    blocked: bool
    erased: bool
    paper_account_id: UUID
    registered_at: datetime


@dataclass(frozen=True)
class Principal:
    """Who is calling, as an access token proved it."""

    user_id: UUID
    role: Role
    email_verified: bool
    session_id: UUID | None = None  # the session the access token belongs to

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class AuthTokens:
    access_token: str
    refresh_token: str
    expires_at: datetime  # of the access token; refresh before then
    user: UserView


def view_of(user: User, keys: DataKeyStore) -> UserView:
    email = name = None
    if not user.erased:
        email = keys.unseal(user.id, "email", user.sealed_email)
        if user.sealed_display_name is not None:
            name = keys.unseal(user.id, "display_name", user.sealed_display_name)
    erased = user.erased or email is None
    return UserView(
        id=user.id,
        email=ERASED if erased else str(email),
        display_name=ERASED if erased and user.sealed_display_name else name,
        role=user.role,
        email_verified=user.email_verified,
        blocked=user.blocked,
        erased=erased,
        paper_account_id=user.paper_account_id,
        registered_at=user.created_on,
    )


def registered_user_ids(trading: Trading) -> Iterator[UUID]:
    """Every user ever registered, in registration order."""
    for notification in read_log(trading, [get_topic(User.Registered)]):
        yield notification.originator_id


def bots_owned_by(trading: Trading, owner_id: str) -> list[UUID]:
    """Found by scanning ``Bot.Created`` events (the owner never changes, and is stored as
    plain text in every version of the event): only that field is read, not the whole
    event (about 5 times faster)."""
    return aggregates_owned_by(trading, Bot.Created, owner_id)


def bot_owners(trading: Trading) -> list[tuple[UUID, str]]:
    """(bot id, owner id) of every bot, oldest first, in one pass over the log."""
    return [(oid, owner) for oid, owner in _owners(trading, [get_topic(Bot.Created)])
            if owner]


def aggregates_owned_by(trading: Trading, created: type, owner_id: str) -> list[UUID]:
    """The ids of the aggregates ``created`` (an event class with an ``owner_id``) made for
    ``owner_id``, oldest first."""
    return [oid for oid, owner in _owners(trading, [get_topic(created)]) if owner == owner_id]


def owners_of(trading: Trading, *created: type) -> list[str]:
    """Every owner of an aggregate created by one of the ``created`` event classes (e.g.
    ``Bot.Created``), in log order, each once."""
    found = (owner for _, owner in _owners(trading, [get_topic(c) for c in created]))
    return list(dict.fromkeys(owner for owner in found if owner))


def _owners(trading: Trading, topics: list[str]) -> Iterator[tuple[UUID, str | None]]:
    cipher, compressor = trading.mapper.cipher, trading.mapper.compressor
    for notification in read_log(trading, topics):
        data = notification.state
        if cipher is not None:
            data = cipher.decrypt(data)
        if compressor is not None:
            data = compressor.decompress(data)
        yield notification.originator_id, json.loads(data).get("owner_id")


def pause_running_bots(trading: Trading, owner_id: str, actor: str) -> list[UUID]:
    """Pause every running bot of ``owner_id``; the ids paused. A bot that another writer
    changed meanwhile is looked at again once."""
    paused = []
    for bot_id in bots_owned_by(trading, owner_id):
        for attempt in (1, 2):
            if trading.get_bot(bot_id).status is not BotStatus.RUNNING:
                break
            try:
                trading.pause_bot(bot_id, actor=actor)
                paused.append(bot_id)
                break
            except (ConcurrencyConflictError, InvalidTransitionError):
                if attempt == 2:
                    raise
    return paused
