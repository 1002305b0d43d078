"""The wallet monitor: every exchange account's balances, recorded on a schedule
(``TRADETAPE_WALLET_SECONDS``, default 300) as ``ExchangeAccount.BalanceObserved``.

A paper account's balances come from its own events (its venue's wallet: deposits and
fills); a live account's through the exchange port (``ExchangeAccounts.fetch_balances``,
the keys' authenticated call, nothing recorded beside the balances). An asset is recorded
only when it differs from the account's last observation: an idle account adds nothing to
the log every five minutes, and the monitor's own liveness (when it last ran, each
account's error) is what ``/health`` shows (``wallet``), not an event. After each
account, its open funding plans are judged against what it has now
(``Funding.review``): a deposit that covers one makes it ``ready_to_execute``.

On PostgreSQL it observes every account of the deployment on one process at a time (its
``turn``: the task's session advisory lock, ``adapters/event_store/task_board.py``), as
the billing sweep: two processes would each ask every exchange for the same balances and
each record them; the others are on standby and take it over when the holder dies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from application.funding import Funding
from application.paper_trading import PaperTrading
from domain.accounts import AccountKind, ExchangeAccount
from domain.errors import DomainError
from domain.money import ZERO
from domain.ports import Balance
from domain.recording import Cause

log = logging.getLogger("tradetape.wallet")
ACTOR = "system:wallet"
DEFAULT_WALLET_SECONDS = 300.0


class LiveBalances(Protocol):
    """What the monitor needs of ``application.exchange_accounts.ExchangeAccounts``."""

    def fetch_balances(self, account_id: UUID) -> dict[str, Balance]: ...


@dataclass
class MonitorHealth:
    last_run_at: datetime | None = None
    accounts: int = 0
    observed: int = 0  # events the last run appended
    errors: dict[str, str] = field(default_factory=dict)  # account id -> code: message


class WalletMonitor:
    def __init__(self, funding: Funding, paper: PaperTrading, *,
                 live: LiveBalances | None = None,
                 every_seconds: float = DEFAULT_WALLET_SECONDS, turn=None):
        """``turn`` (PostgreSQL: ``PostgresTaskLock``): the monitor's rounds run only while
        this process holds it (``held()``); None: always (one process)."""
        self.funding, self.paper, self.live = funding, paper, live
        self.trading = funding.trading
        self.every = timedelta(seconds=every_seconds)
        self.state = MonitorHealth()
        self.turn = turn
        self.standby = False  # another process of the deployment runs the rounds now

    def my_turn(self) -> bool:
        """Whether this process runs the rounds now (asks the turn: raises when its
        connection cannot be had); sets ``standby``."""
        self.standby = self.turn is not None and not self.turn.held()
        return not self.standby

    def run(self, now: datetime, *, load_together: bool = False) -> int:
        """``observe_all`` when it is this process's turn (else 0: on standby)."""
        return self.observe_all(now, load_together=load_together) if self.my_turn() else 0

    def observe_all(self, now: datetime, *, load_together: bool = False) -> int:
        """Observe every account that was not removed; returns the events appended. The
        server runs it at start and every ``every_seconds`` (a schedule of its own).
        ``load_together``: the accounts are loaded in a few queries first, not one each
        (the start's round: nothing else in this process writes to them yet; an account
        changed meanwhile by another is refused its append, reported, and seen next time)."""
        appended, errors, accounts = 0, {}, 0
        plans = self.funding.plan_ids_by_account()
        account_ids = self._account_ids()
        loaded = (self.trading.load_many(account_ids, ExchangeAccount) if load_together
                  else {})
        for account_id in account_ids:
            accounts += 1
            try:
                appended += self.observe(account_id, now, plans.get(str(account_id), []),
                                         loaded.get(account_id))
            except DomainError as error:  # unreachable: next time; /health says it
                if error.code == "ACCOUNT_KEYS_GONE":
                    continue  # its owner was forgotten: nothing to observe, ever
                errors[str(account_id)] = f"{error.code}: {error.message}"
                log.warning("wallet: account %s not observed: %s", account_id, error.code)
        self.state = MonitorHealth(now, accounts, appended, errors)
        return appended

    def due(self, now: datetime) -> bool:
        """False when the last round ran less than a period ago and reached every account:
        the schedule's first round comes right after the start's, and with 1,000 accounts
        it would load each again, one at a time, for nothing."""
        last = self.state
        return (last.last_run_at is None or bool(last.errors)
                or now - last.last_run_at >= self.every)

    def run_due(self, now: datetime, idle: object = 0) -> object:
        """``run`` when ``due``, else ``idle`` (the schedule's: no round, not counted)."""
        return self.run(now) if self.due(now) else idle

    def observe(self, account_id: UUID, now: datetime,
                plan_ids: list[UUID] | None = None,
                account: ExchangeAccount | None = None) -> int:
        """One account's balances now, recorded where they changed, then its plans (those
        of ``plan_ids``; None: found in the log). ``account``: as just loaded (else now)."""
        with self.paper.lock:
            if account is None:
                account = self.trading.get_account(account_id)
            if account.removed:
                return 0
            balances = self._balances(account)
            cause = Cause(now, ACTOR, f"wallet:{account_id}:{int(now.timestamp())}")
            known = dict(account.observed)
            gone = {a: Balance(ZERO) for a, (free, locked) in known.items()
                    if a not in balances and free + locked != ZERO}
            for asset, balance in sorted({**gone, **balances}.items()):
                now_held = (_plain(balance.free), _plain(balance.locked))
                if known.get(asset) != now_held and (sum(now_held) or asset in known):
                    account.observe_balance(cause, asset, *now_held)
            appended = self.trading.append(account)
            return appended + len(self.funding.review(account, cause, plan_ids))

    def _balances(self, account: ExchangeAccount) -> dict[str, Balance]:
        if account.kind is AccountKind.PAPER:
            return self.paper.paper_wallet(str(account.id))
        if self.live is None:
            raise DomainError("this server has no exchange adapters",
                              code="LIVE_TRADING_UNAVAILABLE")
        return self.live.fetch_balances(account.id)

    def _account_ids(self) -> list[UUID]:
        from application.exchange_accounts import all_account_ids

        return all_account_ids(self.trading)

    def health(self) -> tuple[str, dict[str, Any]]:
        """Green when the last run is at most two periods old and reached every account;
        amber when late, before its first run, or when an account could not be observed."""
        state, now = self.state, self.trading.clock.now()
        if self.standby:  # another process observes (its own /health row says how)
            return "green", {"standby": True, "last_run_at": _iso(state.last_run_at),
                             "every_seconds": self.every.total_seconds()}
        if state.last_run_at is None:
            return "amber", {"last_run_at": None, "age_seconds": None,
                             "every_seconds": self.every.total_seconds()}
        age = (now - state.last_run_at).total_seconds()
        late = age > 2 * self.every.total_seconds()
        detail = {"last_run_at": state.last_run_at.isoformat(), "age_seconds": round(age, 3),
                  "every_seconds": self.every.total_seconds(), "accounts": state.accounts,
                  "recorded": state.observed, "errors": state.errors}
        return ("amber" if late or state.errors else "green"), detail


def _plain(amount: Decimal) -> Decimal:
    """A balance never recorded below zero (a paper wallet's rounding dust)."""
    return amount if amount > ZERO else ZERO


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
