"""Webhooks a user creates for outside signals (TradingView alerts, scripts): created with
a random secret, listed, enabled or disabled, deleted, their secret rotated. The secret is
sealed under the owner's data key before it is recorded, as exchange keys are, and shown
only to its owner; it is never logged. Receiving signals: ``application.signal_intake``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from application.trading import Trading
from application.user_views import aggregates_owned_by
from domain.errors import NotFoundError
from domain.ports import DataKeyStore, SecretSource
from domain.webhooks import RECENT_SIGNALS, Webhook, claim_id, recent_signals

SECRET_PURPOSE = "webhook-secret"
# (owner, webhooks they already have) -> None, or PLAN_LIMIT_REACHED (billing's maxWebhooks)
WebhookLimit = Callable[[UUID, int], None]


@dataclass(frozen=True)
class WebhookView:
    id: UUID
    owner_id: str
    name: str
    url: str
    secret: str | None  # None once the owner's data key is destroyed
    enabled: bool
    bot_id: UUID | None
    created_at: datetime
    signals_received: int


class Webhooks:
    """``public_url()``: the server's address, for each webhook's URL."""

    def __init__(self, trading: Trading, keys: DataKeyStore, secrets: SecretSource, *,
                 public_url: Callable[[], str], bot_of: Callable[[UUID, UUID], Any],
                 webhook_limit: WebhookLimit | None = None):
        """``bot_of(owner, bot_id)``: the owner's bot or NotFoundError (checked on create)."""
        self.trading, self._keys, self._secrets = trading, keys, secrets
        self._public_url, self._bot_of = public_url, bot_of
        self.webhook_limit = webhook_limit
        # A lock per webhook, held by its commands and by each signal it receives: a
        # signal waits for nothing on another webhook. Dropped once no one holds it (any
        # id may be posted to: none is kept for ids that are not webhooks).
        self._locks: weakref.WeakValueDictionary[UUID, Any] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()

    # --- commands -------------------------------------------------------------------------

    def create(self, owner_id: UUID, name: str, bot_id: UUID | None = None,
               actor: str | None = None) -> WebhookView:
        if bot_id is not None:
            self._bot_of(owner_id, bot_id)
        if self.webhook_limit is not None:
            self.webhook_limit(owner_id, len(self._ids_of(owner_id)))
        sealed = self._keys.seal(owner_id, SECRET_PURPOSE, self._secrets.new_secret())
        hook = Webhook.create(self.trading.ids.new_id(), self.trading.cause(actor or str(owner_id)),
                              owner_id=str(owner_id), name=name, bot_id=bot_id,
                              sealed_secret=sealed)
        self.trading.save_all(hook)
        return self._view(hook)

    def set_enabled(self, owner_id: UUID, webhook_id: UUID, enabled: bool) -> WebhookView:
        return self._change(owner_id, webhook_id,
                            lambda hook, cause: hook.set_enabled(cause, enabled))

    def rotate_secret(self, owner_id: UUID, webhook_id: UUID) -> WebhookView:
        """A new secret; the old one stops working at once."""
        def rotate(hook: Webhook, cause) -> None:
            hook.rotate_secret(cause, self._keys.seal(owner_id, SECRET_PURPOSE,
                                                      self._secrets.new_secret()))
        return self._change(owner_id, webhook_id, rotate)

    def delete(self, owner_id: UUID, webhook_id: UUID) -> WebhookView:
        return self._change(owner_id, webhook_id, lambda hook, cause: hook.delete(cause))

    def lock_of(self, webhook_id: UUID) -> Any:
        """The webhook's lock (reentrant): hold it from loading the webhook to saving it."""
        with self._locks_guard:
            lock = self._locks.get(webhook_id)
            if lock is None:
                lock = self._locks[webhook_id] = threading.RLock()
            return lock

    def _change(self, owner_id: UUID, webhook_id: UUID, command) -> WebhookView:
        with self.lock_of(webhook_id):
            hook = self.owned(owner_id, webhook_id)
            command(hook, self.trading.cause(str(owner_id)))
            self.trading.save_all(hook)
            return self._view(hook)

    # --- reading --------------------------------------------------------------------------

    def owned(self, owner_id: UUID, webhook_id: UUID | None) -> Webhook:
        """The owner's webhook (not deleted); NOT_FOUND otherwise, never "forbidden"."""
        hook = self.find(webhook_id) if webhook_id is not None else None
        if hook is None or hook.owner_id != str(owner_id) or hook.deleted:
            raise NotFoundError(f"no webhook {webhook_id}", field="id")
        return hook

    def find(self, webhook_id: UUID) -> Webhook | None:
        try:
            return self.trading.load(webhook_id, Webhook)
        except NotFoundError:
            return None

    def list(self, owner_id: UUID) -> list[WebhookView]:
        """The owner's webhooks that are not deleted, oldest first."""
        hooks = [self.find(webhook_id) for webhook_id in self._ids_of(owner_id)]
        return [self._view(hook) for hook in hooks if hook is not None and not hook.deleted]

    def get(self, owner_id: UUID, webhook_id: UUID | None) -> WebhookView:
        return self._view(self.owned(owner_id, webhook_id))

    def signals(self, owner_id: UUID, webhook_id: UUID,
                last: int = RECENT_SIGNALS) -> list[dict[str, Any]]:
        """The webhook's last ``last`` signals (at most 1,000), newest first: read from its
        newest events (at most two a signal, and a few of its own)."""
        hook = self.owned(owner_id, webhook_id)
        last = min(max(last, 0), RECENT_SIGNALS)
        stored = self.trading.recorder.select_events(hook.id, desc=True, limit=2 * last + 64)
        events = (self.trading.mapper.to_domain_event(item) for item in stored)
        return recent_signals(events, last)

    def is_claimed(self, webhook_id: UUID, signal_id: str) -> bool:
        """Whether a signal with this id was accepted on the webhook before."""
        return bool(self.trading.recorder.select_events(claim_id(webhook_id, signal_id),
                                                        limit=1))

    def secret_of(self, hook: Webhook) -> str | None:
        return self._keys.unseal(UUID(hook.owner_id), SECRET_PURPOSE, hook.sealed_secret)

    def url_of(self, webhook_id: UUID) -> str:
        return f"{self._public_url().rstrip('/')}/webhooks/{webhook_id}"

    def _view(self, hook: Webhook) -> WebhookView:
        return WebhookView(id=hook.id, owner_id=hook.owner_id, name=hook.name,
                           url=self.url_of(hook.id), secret=self.secret_of(hook),
                           enabled=hook.enabled, bot_id=hook.bot_id,
                           created_at=hook.created_on, signals_received=hook.signals_received)

    def _ids_of(self, owner_id: UUID) -> list[UUID]:
        """Deleted ones included."""
        return aggregates_owned_by(self.trading, Webhook.Created, str(owner_id))
