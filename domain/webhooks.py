"""A webhook: the URL and secret through which an outside sender (TradingView, a script)
starts and closes a user's deals. Every signal it receives, accepted or refused, is one of
its events, with the reason.

The secret is recorded sealed (under its owner's data key, as exchange keys are): the log
never holds it in the clear. A signal id is claimed by a :class:`SignalClaim` (an aggregate
whose id follows from the webhook's and the signal's), created in the same transaction as
the signal's ``SignalReceived``: a signal sent twice is acted on once, across processes
(the second creation is refused by the store). The webhook's state stays small (it is
loaded for every signal); its signals are read from its events (:func:`recent_signals`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError, InvalidTransitionError
from domain.recording import Cause, TradetapeAggregate
from domain.text import checked_text

NAME_MAX = 64
RECENT_SIGNALS = 1000  # what GraphQL shows of a webhook's signals, newest first
ACTIONS = ("start_deal", "close_deal", "buy", "sell", "emergency_exit")


def webhook_name(name: str) -> str:
    name = checked_text(name, "name", max_chars=NAME_MAX).strip()
    if not name:
        raise DomainError(f"must be 1 to {NAME_MAX} characters", code="INVALID_WEBHOOK_NAME",
                          field="name")
    return name


class Webhook(TradetapeAggregate):
    owner_id: str
    name: str
    bot_id: UUID | None
    sealed_secret: str
    enabled: bool
    deleted: bool
    signals_received: int

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Created(TradetapeAggregate.Created, Event):
        owner_id: str
        name: str
        bot_id: UUID | None
        sealed_secret: str

        def apply(self, hook: Webhook) -> None:
            hook.owner_id, hook.name, hook.bot_id = self.owner_id, self.name, self.bot_id
            hook.sealed_secret, hook.enabled, hook.deleted = self.sealed_secret, True, False
            hook.signals_received = 0

    class EnabledSet(Event):
        enabled: bool

        def apply(self, hook: Webhook) -> None:
            hook.enabled = self.enabled

    class SecretRotated(Event):
        sealed_secret: str

        def apply(self, hook: Webhook) -> None:
            hook.sealed_secret = self.sealed_secret

    class Deleted(Event):
        def apply(self, hook: Webhook) -> None:
            hook.deleted, hook.enabled = True, False

    class SignalReceived(Event):
        """``outcome``: accepted (authenticated and fresh: about to be acted on), refused
        (``code`` says why) or ignored (an id already seen)."""

        number: int
        signal_id: str | None
        action: str | None
        outcome: str
        code: str | None
        message: str

        def apply(self, hook: Webhook) -> None:
            hook.signals_received = self.number

    class SignalActedOn(Event):
        """What an accepted signal did: ``outcome`` done (``deal_id`` the deal it opened or
        closed) or refused by trading (``code``: DEAL_ALREADY_OPEN, DEAL_NOT_OPEN, ...)."""

        number: int
        outcome: str
        code: str | None
        message: str
        deal_id: UUID | None

        def apply(self, hook: Webhook) -> None:
            pass  # read back by recent_signals()

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def create(cls, webhook_id: UUID, cause: Cause, *, owner_id: str, name: str,
               bot_id: UUID | None, sealed_secret: str) -> Webhook:
        return cls._start(cls.Created, webhook_id, cause, owner_id=owner_id,
                          name=webhook_name(name), bot_id=bot_id, sealed_secret=sealed_secret)

    def _check_live(self) -> None:
        if self.deleted:
            raise InvalidTransitionError("the webhook was deleted", code="WEBHOOK_DELETED")

    def set_enabled(self, cause: Cause, enabled: bool) -> None:
        self._check_live()
        if self.enabled != enabled:
            self._record(self.EnabledSet, cause, enabled=enabled)

    def rotate_secret(self, cause: Cause, sealed_secret: str) -> None:
        self._check_live()
        self._record(self.SecretRotated, cause, sealed_secret=sealed_secret)

    def delete(self, cause: Cause) -> None:
        self._check_live()
        self._record(self.Deleted, cause)

    def receive(self, cause: Cause, *, signal_id: str | None, action: str | None,
                outcome: str, code: str | None, message: str) -> int:
        """Record a signal received; its number (1, 2, ...)."""
        number = self.signals_received + 1
        self._record(self.SignalReceived, cause, number=number, signal_id=signal_id,
                     action=action, outcome=outcome, code=code, message=message[:300])
        return number

    def acted_on(self, cause: Cause, number: int, *, outcome: str, code: str | None,
                 message: str, deal_id: UUID | None) -> None:
        self._record(self.SignalActedOn, cause, number=number, outcome=outcome, code=code,
                     message=message[:300], deal_id=deal_id)

    @property
    def created_at(self) -> datetime:
        return self.created_on


def recent_signals(events_newest_first: Iterable[Webhook.Event],
                   last: int = RECENT_SIGNALS) -> list[dict[str, Any]]:
    """The last ``last`` signals of a webhook, newest first, each with what it did: from
    its events, newest first (the outcome of an accepted signal comes after it)."""
    acted: dict[int, Webhook.SignalActedOn] = {}
    found: list[dict[str, Any]] = []
    for event in events_newest_first:
        if isinstance(event, Webhook.SignalActedOn):
            acted.setdefault(event.number, event)
        elif isinstance(event, Webhook.SignalReceived):
            entry = {"number": event.number, "at": event.timestamp,
                     "signal_id": event.signal_id, "action": event.action,
                     "outcome": event.outcome, "code": event.code, "message": event.message,
                     "deal_id": None}
            outcome = acted.pop(event.number, None)
            if outcome is not None:
                entry.update(outcome=outcome.outcome, code=outcome.code,
                             message=outcome.message, deal_id=outcome.deal_id)
            found.append(entry)
            if len(found) >= last:
                break
    return found


def claim_id(webhook_id: UUID, signal_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tradetape:signal:{webhook_id}:{signal_id}")


class SignalClaim(TradetapeAggregate):
    """A signal id received on a webhook: it exists once."""

    webhook_id: UUID
    signal_id: str

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Claimed(TradetapeAggregate.Created, Event):
        webhook_id: UUID
        signal_id: str

        def apply(self, claim: SignalClaim) -> None:
            claim.webhook_id, claim.signal_id = self.webhook_id, self.signal_id

    @classmethod
    def claim(cls, webhook_id: UUID, signal_id: str, cause: Cause) -> SignalClaim:
        return cls._start(cls.Claimed, claim_id(webhook_id, signal_id), cause,
                          webhook_id=webhook_id, signal_id=signal_id)
