"""Signals received on a webhook (``POST /webhooks/{id}``): authenticated, checked, acted on,
and every one recorded on the webhook with its outcome.

Order of checks: the webhook exists (else 404, nothing to record on), it is enabled, the
body authenticates (header HMAC or the ``secret`` field), the body is a known signal, it is
fresh (SIGNAL_STALE), its id is new (a repeat answers 200 and is ignored). Only then is
anything traded. The accepted signal is recorded (claiming its id) before it is acted on,
so two processes given the same id act once: the second loses the race for the webhook's
next version and finds the id seen.

What buy and sell mean for a bot: ``buy`` is ``start_deal`` (a deal opens now, its base
order at market) and ``sell`` is ``close_deal`` (the open deal is sold at market, reason
``signal``). ``amount`` and ``price`` are recorded as sent; the bot's configuration sizes
its orders and the market prices them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from application.paper_trading import PaperTrading
from application.webhooks import Webhooks
from domain.deals import CloseReason
from domain.errors import ConcurrencyConflictError, DomainError, NotFoundError
from domain.recording import Cause
from domain.signals import (
    Signal,
    SignalError,
    authenticate,
    check_fresh,
    parse_body,
    read_signal,
    same_pair,
)
from domain.webhooks import ACTIONS, SignalClaim, Webhook

log = logging.getLogger("tradetape.webhooks")
EmergencyExitRun = Callable[[UUID, str], Any]  # (owner, actor) -> report with a tally
Lap = Callable[[str], None]  # a phase of a signal ends (a debug breakdown of its time)


def _unmeasured(phase: str) -> None:
    """No breakdown asked for."""


@dataclass(frozen=True)
class SignalAnswer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


def _refused(status: int, code: str, message: str) -> SignalAnswer:
    return SignalAnswer(status, {"status": "refused", "code": code, "message": message})


class SignalIntake:
    def __init__(self, webhooks: Webhooks, paper: PaperTrading,
                 emergency_exit: EmergencyExitRun | None = None):
        self.webhooks, self.paper, self.trading = webhooks, paper, webhooks.trading
        self.emergency_exit = emergency_exit

    def receive(self, webhook_id: UUID, body: bytes, signature: str | None,
                lap: Lap = _unmeasured) -> SignalAnswer:
        """``lap(phase)``: marks where each phase ends (api/webhook_timings.py)."""
        lap("queued")
        # One signal at a time on a webhook, and no command on it meanwhile (a signal's
        # trade is saved with the webhook's event: no other writer may change it in
        # between). Signals on other webhooks do not wait for this one.
        with self.webhooks.lock_of(webhook_id):
            lap("lock")
            for attempt in (1, 2):
                hook = self.webhooks.find(webhook_id)
                lap("load")
                if hook is None or hook.deleted:
                    return _refused(404, "WEBHOOK_NOT_FOUND", f"no webhook {webhook_id}")
                cause = self.trading.cause(f"webhook:{webhook_id}")
                try:
                    return self._receive(hook, cause, body, signature, lap)
                except ConcurrencyConflictError:
                    if attempt == 2:
                        return _refused(409, "CONFLICT", "the webhook is busy: send again")
        raise AssertionError("unreachable")

    def _receive(self, hook: Webhook, cause: Cause, body: bytes,
                 signature: str | None, lap: Lap) -> SignalAnswer:
        data: dict[str, Any] | None = None
        try:
            if not hook.enabled:
                raise SignalError("the webhook is disabled", code="WEBHOOK_DISABLED",
                                  status=403)
            secret = self.webhooks.secret_of(hook)
            if secret is None:  # the owner's data key is gone: no secret can match
                raise SignalError("the webhook's secret is gone", code="WEBHOOK_DISABLED",
                                  status=403)
            if signature is None:
                data = parse_body(body)
            authenticate(secret, body, signature, data)
            data = data if data is not None else parse_body(body)
            signal = read_signal(data)
            check_fresh(signal, cause.at)
        except SignalError as refused:
            self._record(hook, cause, data, "refused", refused.code, refused.message)
            log.info("webhook %s refused a signal: %s", hook.id, refused.code)
            return _refused(refused.status, refused.code, refused.message)
        if signal.signal_id is not None and self.webhooks.is_claimed(hook.id, signal.signal_id):
            self._record(hook, cause, data, "ignored", "SIGNAL_DUPLICATE",
                         "an id already received: ignored")
            return SignalAnswer(200, {"status": "ignored", "code": "SIGNAL_DUPLICATE"})
        lap("check")
        claims = [] if signal.signal_id is None else [
            SignalClaim.claim(hook.id, signal.signal_id, cause)]
        # A trade is saved with the signal, its claim and its outcome, in one transaction
        # (a second process given the same id fails to save its own); an emergency exit,
        # which saves as it goes, only after the signal is recorded.
        saved = signal.action == "emergency_exit"
        number = self._record(hook, cause, data, "accepted", None, "accepted", claims,
                              save=saved)
        return self._act(hook, number, signal, cause, [] if saved else [hook, *claims], lap)

    def _record(self, hook: Webhook, cause: Cause, data: dict[str, Any] | None, outcome: str,
                code: str | None, message: str, claims: list[SignalClaim] | None = None,
                save: bool = True) -> int:
        """Record the signal on the webhook (saved with its id's claim unless told)."""
        action = data.get("action") if data is not None else None
        signal_id = data.get("id") if data is not None else None
        number = hook.receive(
            cause, signal_id=signal_id[:128] if isinstance(signal_id, str) else None,
            action=action.strip().lower() if isinstance(action, str)
            and action.strip().lower() in ACTIONS else None,
            outcome=outcome, code=code, message=message)
        if save:
            self.trading.save_all(hook, *(claims or []))
        return number

    def _act(self, hook: Webhook, number: int, signal: Signal, cause: Cause,
             unsaved: list[Any], lap: Lap) -> SignalAnswer:
        """``unsaved``: the webhook and claim whose events are still to be saved."""
        recorded: list[bool] = []

        def outcome(deal_id: UUID | None, done: bool) -> list[Any]:
            """What the trade did, saved with its events."""
            recorded.append(True)
            lap("decide")  # the trade decided; next, its one transaction
            opens = signal.action in ("start_deal", "buy")
            verb = "opened" if opens else "closed"
            refusal = "BASE_ORDER_REFUSED" if opens else "CLOSE_REJECTED"  # as paper says
            hook.acted_on(cause, number, outcome="done" if done else "refused",
                          code=None if done else refusal,
                          message=f"{signal.action}: deal {deal_id} "
                                  f"{verb if done else 'not ' + verb}", deal_id=deal_id)
            return unsaved or [hook]

        deal_id = None
        try:
            if signal.action == "emergency_exit":
                message = self._emergency_exit(hook, cause)
            else:
                deal_id = self._trade(hook, signal, cause, outcome, lap)
                lap("save")
                message = f"{signal.action}: deal {deal_id}"
        except ConcurrencyConflictError:
            raise  # another process saved this signal's id first: decided again, as a repeat
        except DomainError as error:
            status = error.status if isinstance(error, SignalError) else 409
            if not recorded:
                self._acted(hook, number, cause, "refused", error.code, error.message, None,
                            unsaved)
            log.info("webhook %s: signal %d refused: %s", hook.id, number, error.code)
            return _refused(status, error.code, error.message)
        if not recorded:
            self._acted(hook, number, cause, "done", None, message, deal_id, unsaved)
        return SignalAnswer(200, {"status": "accepted", "action": signal.action,
                                  "deal_id": str(deal_id) if deal_id else None,
                                  "correlation_id": cause.correlation_id})

    def _acted(self, hook: Webhook, number: int, cause: Cause, outcome: str,
               code: str | None, message: str, deal_id: UUID | None,
               unsaved: list[Any]) -> None:
        hook.acted_on(cause, number, outcome=outcome, code=code, message=message,
                      deal_id=deal_id)
        self.trading.save_all(*(unsaved or [hook]))

    def _trade(self, hook: Webhook, signal: Signal, cause: Cause, outcome, lap: Lap) -> UUID:
        bot = self._bot_of(hook, signal)
        lap("bot")
        if signal.pair is not None and not same_pair(signal.pair, bot.config.pair):
            raise SignalError(f"the bot trades {bot.config.pair}, not {signal.pair}",
                              code="PAIR_MISMATCH", status=422, field="pair")
        if signal.action not in ("start_deal", "buy") and bot.open_deal_id is None:
            raise DomainError("the bot has no open deal to close", code="DEAL_NOT_OPEN")
        # The runner's lock, taken again inside (reentrant): taken here, its wait (an
        # engine step under way) is a phase of its own in the timings.
        with self.paper.lock:
            lap("engine_lock")
            if signal.action in ("start_deal", "buy"):
                return self.paper.start_deal(bot.id, cause.actor, cause.correlation_id,
                                             also=outcome)
            return self.paper.close_deal(bot.id, CloseReason.SIGNAL, cause.actor,
                                         cause.correlation_id, also=outcome)

    def _bot_of(self, hook: Webhook, signal: Signal):
        if hook.bot_id is not None and signal.bot_id not in (None, hook.bot_id):
            raise SignalError("this webhook trades one bot: bot_id names another",
                              code="BOT_MISMATCH", status=422, field="bot_id")
        bot_id = hook.bot_id or signal.bot_id
        if bot_id is None:
            raise SignalError("name the bot (bot_id), or create the webhook for one",
                              code="BOT_REQUIRED", status=422, field="bot_id")
        try:
            bot = self.trading.get_bot(bot_id)
        except NotFoundError:
            bot = None
        if bot is None or bot.owner_id != hook.owner_id:
            raise SignalError(f"no bot {bot_id} of this webhook's owner",
                              code="BOT_NOT_FOUND", status=422, field="bot_id")
        return bot

    def _emergency_exit(self, hook: Webhook, cause: Cause) -> str:
        if self.emergency_exit is None:
            raise SignalError("emergency exits are not available on this server",
                              code="EMERGENCY_EXIT_UNAVAILABLE", status=422)
        report = self.emergency_exit(UUID(hook.owner_id), cause.actor)
        if report.already_running:
            return f"an emergency exit is under way ({report.correlation_id})"
        t = report.tally
        return (f"emergency exit {report.correlation_id}: {t.bots_stopped} bots stopped, "
                f"{t.deals_closed} deals sold")
