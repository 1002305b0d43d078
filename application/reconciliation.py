"""Reconciliation of live exchange accounts, on start and every ``every_seconds``
(``TRADETAPE_RECONCILE_SECONDS``, default 60) while a server runs, beside the live loop
(never inside its steps: an exchange's latency must not hold the trading).

Orders are reconciled on every step already (``LiveVenue.poll``: each order the log
believes open is asked about). This adds what a step does not see:
- *stray orders*: an open order on the exchange with our client-id prefix that the log
  does not know (placed by another copy of Tradetape on the same keys, or a request whose
  Submitted event was lost with a disk) is recorded as an observation
  (``ExchangeAccount.StrayOrderFound``) and cancelled: nothing trades that no deal owns;
- *balances*: what the exchange reports is recorded when it changed
  (``ExchangeAccount.BalanceObserved``) and compared with what the account's open deals
  and positions hold, every bot's whichever process trades it (read from the log:
  ``application/account_holdings.py``): less
  than that, beyond what the exchange's amount precision explains, is drift
  (``ExchangeAccount.DriftDetected``; ``DriftResolved`` when it is gone), and ``/health``
  shows the account amber. A shortfall is reported only once it is seen again a round's
  interval later (``every_seconds``: the schedule's next round): a sell the exchange filled
  and the log has not recorded yet (its runner's next step) shows as a shortfall for a
  moment, and operators are not paged for that race; meanwhile ``/health`` lists it as
  ``drift_unconfirmed`` (green).

An account the exchange cannot be asked about (unreachable, keys refused: a named code)
makes the round fail once every account was tried (``AccountsNotReconciled``, the first
account's code): the ``reconciliation`` task is amber on ``/health``, with the code and
since when, until a round reaches every account again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from application.account_holdings import AccountHoldings
from application.background_open import BackgroundOpen
from application.live_venue import LiveVenue
from application.paper_trading import PaperTrading
from application.task_health import ErrorKind
from domain.accounts import ExchangeAccount
from domain.errors import DomainError, NotFoundError
from domain.money import ZERO
from domain.orders import Order, OrderStatus
from domain.ports import Balance, Exchange
from domain.recording import Cause

log = logging.getLogger("tradetape.reconcile")
ACTOR = "system:reconciliation"
# Drift below this share of what the deals hold is precision and fee rounding, not drift.
RELATIVE_TOLERANCE = Decimal("0.002")
# How long a round waits for the first read of the deals and positions (every one ever
# recorded: seconds on a long log) before it goes on without comparing drift (the start's
# round is in the server's start)
FIRST_READ_WAIT_SECONDS = 5.0


class AccountsNotReconciled(DomainError):
    """Accounts a round could not reconcile (unreachable, keys refused), each with its
    code; the error's code is the first one's (what ``/health`` shows of the task), its
    message the first one's (the log's line; ``/health`` never shows a message)."""

    def __init__(self, failures: list[tuple[str, DomainError]], tried: int):
        account_id, first = failures[0]
        # (the others first: the log's line is cut at 300 characters)
        others = ", ".join(f"account {a}: {e.code}" for a, e in failures[1:4])
        more = f" and {len(failures) - 4} more" if len(failures) > 4 else ""
        also = f" (also {others}{more})" if others else ""
        super().__init__(f"{len(failures)} of {tried} accounts not reconciled{also}: "
                         f"account {account_id}: {first.message}", code=first.code)


@dataclass
class AccountCheck:
    """The last reconciliation of one live account, for /health and GraphQL."""

    checked_at: datetime | None = None
    error: str | None = None
    drift: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # asset: exp, obs
    strays_cancelled: int = 0
    balances: dict[str, Balance] = field(default_factory=dict)
    # a shortfall seen once, not reported yet: asset -> expected, observed, first seen at
    unconfirmed: dict[str, tuple[Decimal, Decimal, datetime]] = field(default_factory=dict)
    resumed: bool = False  # drift and balances taken from the account's log (_taken_over)

    @property
    def status(self) -> str:
        return "unreachable" if self.error else "drift" if self.drift else "ok"


class Reconciler:
    """Runs beside the live loop (its own thread: ``application/bootstrap.py``). The
    exchange is asked with no lock held, so a slow or silent exchange delays no trading
    step; the runner's lock is taken only to read what the log knows and to append the
    result (``PaperTrading.save_aggregates``, the loop's own path). It asks through a client
    of its own per account (``_exchange``), not the trading step's."""

    def __init__(self, paper: PaperTrading, every_seconds: float = 60.0, turns=None,
                 holdings: AccountHoldings | None = None):
        """``turns`` (PostgreSQL, where engine workers share the accounts: each trades the
        bots it leases): ``mine(account_ids)``, the accounts this process reconciles now,
        one process per account at a time (``adapters/event_store/task_board.py``).
        ``holdings``: what every open deal and position of each account holds, from the
        log (None: read by this reconciler from ``paper``'s store)."""
        self.paper, self.every = paper, timedelta(seconds=every_seconds)
        self.turns = turns
        self.holdings = holdings or AccountHoldings(paper.trading)
        self._first_read: BackgroundOpen | None = None
        self.accounts: dict[str, AccountCheck] = {}
        self._next: datetime | None = None
        self._running = threading.Lock()  # one round at a time (start's, the schedule's)

    def due(self, now: datetime) -> bool:
        return self._next is None or now >= self._next

    def run_if_due(self, now: datetime) -> int:
        return self.run(now) if self.due(now) else 0

    def run(self, now: datetime) -> int:
        """Reconcile every live account this runner trades; returns events appended."""
        with self._running:
            self._next = now + self.every
            with self.paper.lock:
                by_account: dict[str, list[tuple[str, LiveVenue]]] = {}
                for account_id, pair, venue in self.paper.live_markets():
                    by_account.setdefault(account_id, []).append((pair, venue))
                release = getattr(self.paper.live_venues, "release_unused", None)
                if release is not None:  # the clients of accounts no longer traded
                    release(set(by_account))
            if self.turns is not None:  # another process reconciles the others
                mine = self.turns.mine(set(by_account))
                by_account = {a: m for a, m in by_account.items() if a in mine}
                for elsewhere in set(self.accounts) - mine:  # (its checks are shown there)
                    del self.accounts[elsewhere]
            appended, unexpected, failed = 0, None, []
            # (the log's deals and positions read up to now: its head)
            compare = bool(by_account) and self._holdings_read()
            for account_id, markets in by_account.items():
                check = self.accounts.setdefault(account_id, AccountCheck())
                try:
                    appended += self._account(account_id, markets, check, now, compare)
                    check.error = None
                except DomainError as error:  # unreachable: the others go on; next time
                    # the code alone: /health answers anyone, and the message quotes
                    # the exchange's URL with its query string (the round's log line has it)
                    check.error = error.code
                    failed.append((account_id, error))  # (logged once, with the round)
                except Exception as error:  # outside the known codes: the other accounts
                    check.error = ErrorKind.of(error).kind  # go on; its kind, no message
                    unexpected = unexpected or error
                check.checked_at = now
            if unexpected is not None:  # the round failed: its schedule logs it, /health
                raise unexpected  # shows the task amber until a round succeeds
            if failed:  # (what was appended for the others is saved)
                raise AccountsNotReconciled(failed, len(by_account))
            return appended

    def _holdings_read(self) -> bool:
        """The log's deals and positions read up to its head. The first read (every deal
        ever recorded) runs on a thread of its own: a round waits for it at most
        ``FIRST_READ_WAIT_SECONDS``, then goes on without comparing drift (False), and a
        later round compares once it is done. A first read that failed is begun again by
        the next round (this one fails with its error)."""
        if not self.holdings.read_once:
            if self._first_read is None:
                self._first_read = BackgroundOpen(self.holdings.catch_up,
                                                  name="account-holdings")
            if not self._first_read.join(FIRST_READ_WAIT_SECONDS):
                log.warning("the open deals and positions are still being read: this "
                            "round compares no drift")
                return False
            first, self._first_read = self._first_read, None
            first.wait()  # (raises what it raised)
        self.holdings.catch_up()
        return True

    def _account(self, account_id: str, markets: list[tuple[str, LiveVenue]],
                 check: AccountCheck, now: datetime, compare: bool = True) -> int:
        with self.paper.lock:  # what the log knows before the exchange is asked
            known = self._known(account_id, markets)
            held = self._held(account_id) if compare else None
            exchange = self._exchange(account_id, markets)
        listed = [(pair, venue, order) for pair, venue in markets
                  for order in exchange.fetch_open_orders(pair)]
        with self.paper.lock:  # and since: an order placed meanwhile is the log's
            known |= self._known(account_id, markets)
            strays = [(pair, venue, order) for pair, venue, order in listed
                      if order.client_order_id not in known
                      and venue.owns(order.client_order_id)
                      and not self._in_log(order.client_order_id)]
        for pair, _, order in strays:  # nothing trades that no deal owns
            exchange.cancel_order(order.exchange_order_id, pair)
        balances = exchange.fetch_balance()
        if compare:
            self.holdings.catch_up()  # (what was recorded while the exchange was asked)
        with self.paper.lock:  # only the append of the result holds the trading step
            account = self.paper.trading.load(UUID(account_id), ExchangeAccount)
            if not check.resumed:  # first here: maybe another process's before
                self._taken_over(account, check)
            cause = Cause(now, ACTOR, f"reconcile:{account_id}:{int(now.timestamp())}")
            for pair, _, order in strays:
                account.found_stray_order(cause, order.client_order_id,
                                          order.exchange_order_id, pair)
                check.strays_cancelled += 1
                log.warning("account %s: stray order %s on %s cancelled", account_id,
                            order.client_order_id, pair)
            for asset, balance in sorted(balances.items()):
                if check.balances.get(asset) != balance and (balance.total or asset in
                                                              check.balances):
                    account.observe_balance(cause, asset, balance.free, balance.locked)
            check.balances = dict(balances)
            # Compared only when no fill was recorded while the exchange was asked (else
            # the balance and the deals would be of different moments): the next round.
            if compare and self._held(account_id) == held:
                self._drift(account, cause, balances, held, check, self.every)
            return self.paper.save_aggregates([account])

    def _exchange(self, account_id: str, markets: list[tuple[str, LiveVenue]]) -> Exchange:
        """The exchange this thread asks: the account's own client for the reconciliation
        where the runner's venues give one (``bootstrap_exchanges.open_live_venues``: never the
        trading step's ccxt client from a second thread), else the venue's."""
        own = getattr(self.paper.live_venues, "reconciliation_exchange", None)
        return markets[0][1].exchange if own is None else own(account_id)

    def _known(self, account_id: str, markets: list[tuple[str, LiveVenue]]) -> set[str]:
        """The client ids of the orders the account's engines and venues follow."""
        known = set()
        for engine in self.paper.engines_of(account_id):
            known.update(engine.orders)
        for _, venue in markets:
            known |= venue.open_client_ids()
        return known

    def _in_log(self, client_order_id: str) -> bool:
        """An order the log holds and still believes may trade (each is written ahead of
        its request: ``LiveVenue``), e.g. one that ended while the exchange's list was on
        its way; one the log says is lost is a stray."""
        try:
            order = self.paper.trading.load(UUID(hex=client_order_id), Order)
        except (NotFoundError, ValueError):
            return False
        return order.status is not OrderStatus.LOST

    def _held(self, account_id: str) -> dict[str, Decimal]:
        """Base units the account's open deals and positions hold, by asset: every bot's
        and every position's, whichever process trades them, as the log has them."""
        return self.holdings.held(account_id)

    def _taken_over(self, account: ExchangeAccount, check: AccountCheck) -> None:
        """What the account's log says was last observed and which drift is open (another
        process may have reconciled it until now, or this one before a restart): a drift
        already reported is not reported again, balances already recorded not again."""
        check.resumed = True
        check.balances = {asset: Balance(free, locked)
                          for asset, (free, locked) in account.observed.items()}
        for event in self.paper.trading.events.get(account.id):
            if isinstance(event, ExchangeAccount.DriftDetected):
                check.drift[event.asset] = (event.expected, event.observed)
            elif isinstance(event, ExchangeAccount.DriftResolved):
                check.drift.pop(event.asset, None)

    @staticmethod
    def _drift(account: ExchangeAccount, cause: Cause, balances: dict[str, Balance],
               held: dict[str, Decimal], check: AccountCheck, every: timedelta) -> None:
        """A shortfall is reported when it is still there ``every`` (a round's interval)
        after it was first seen: not a fill on its way to the log."""
        for asset in sorted(set(held) | set(check.drift) | set(check.unconfirmed)):
            expected = held.get(asset, ZERO)
            observed = balances.get(asset, Balance(ZERO)).total
            short = expected - observed
            drifting = short > expected * RELATIVE_TOLERANCE and short > ZERO
            if not drifting:
                check.unconfirmed.pop(asset, None)  # (a race: the log caught up)
            elif asset not in check.drift:
                seen = check.unconfirmed.get(asset)
                if seen is None or cause.at - seen[2] < every:
                    check.unconfirmed[asset] = (expected, observed,
                                                seen[2] if seen else cause.at)
                    continue
                del check.unconfirmed[asset]
                account.detect_drift(cause, asset, expected, observed)
                check.drift[asset] = (expected, observed)
                log.warning("account %s: the exchange holds %s %s, the open deals and "
                            "positions %s",
                            account.id, observed, asset, expected)
            elif not drifting and asset in check.drift:
                account.resolve_drift(cause, asset, observed)
                del check.drift[asset]

    def health(self) -> tuple[str, dict]:
        detail = {account_id: {"status": c.status, "error": c.error,
                               "checked_at": c.checked_at.isoformat() if c.checked_at else None,
                               "drift": {a: {"expected": str(e), "observed": str(o)}
                                         for a, (e, o) in list(c.drift.items())},
                               "drift_unconfirmed": {  # seen once: reported if it stays
                                   a: {"expected": str(e), "observed": str(o),
                                       "since": since.isoformat()}
                                   for a, (e, o, since) in list(c.unconfirmed.items())},
                               "strays_cancelled": c.strays_cancelled}
                  for account_id, c in list(self.accounts.items())}  # (its thread adds)
        amber = any(c["status"] != "ok" for c in detail.values())
        return ("amber" if amber else "green"), {"accounts": detail}
