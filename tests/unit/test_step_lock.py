"""The paper runner's lock is handed over in the order it was asked for: a thread that holds
it one piece of work after another (the wallet monitor's round, one account at a time) lets
a waiting trading step in at its next release, instead of taking it back before the step
is scheduled (10,000 bots: the server's first candle waited minutes behind a round)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.funding import Funding
from application.paper_trading import PaperTrading
from application.step_lock import StepLock
from application.wallet_monitor import WalletMonitor

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def until_queued(lock: StepLock, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while lock.waiting < count:
        assert time.monotonic() < deadline, "the other thread never asked for the lock"
        time.sleep(0.001)


def test_a_waiting_step_goes_before_a_holder_that_asks_again() -> None:
    lock, order = StepLock(), []

    def step() -> None:
        with lock:
            order.append("step")

    lock.acquire()
    waiting = threading.Thread(target=step)
    waiting.start()
    until_queued(lock)
    lock.release()
    for _ in range(1000):  # asks again at once, again and again
        with lock:
            order.append("round")
    waiting.join(10)
    assert order[0] == "step"
    assert order.count("round") == 1000


def test_re_entry_and_the_count_of_outermost_acquisitions() -> None:
    lock = StepLock()
    with lock, lock:
        assert lock.entries == 1
    with lock:
        pass
    assert lock.entries == 2
    assert lock.waiting == 0


def test_a_timed_wait_that_runs_out_leaves_the_queue() -> None:
    lock, got = StepLock(), []
    lock.acquire()
    other = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
    other.start()
    other.join(10)
    assert got == [False]
    assert lock.waiting == 0
    lock.release()
    assert lock.acquire(blocking=False)  # free again, for anyone
    lock.release()


def test_releasing_a_lock_not_held_is_refused() -> None:
    lock = StepLock()
    try:
        lock.release()
    except RuntimeError:
        return
    raise AssertionError("released a lock nobody held")


def test_a_candle_is_not_kept_out_by_a_wallet_round() -> None:
    """The wallet monitor observes one account after another, each under the runner's lock:
    a candle that arrives during the round steps at the next account, not after the last."""
    trading = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("lock"))
    accounts = []
    for n in range(20):
        owner = f"user{n}"
        account = trading.open_account(owner_id=owner, exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("1000"), actor=owner)
        accounts.append(account)
    paper = PaperTrading(
        trading,
        trading.ids,
        lambda pair, quote, base: PaperExchange(pair, quote_balance=quote, base_balance=base),
    )
    monitor = WalletMonitor(Funding(trading, paper), paper)
    order: list[str] = []
    wallet = paper.paper_wallet
    first = threading.Event()

    def observed(account_id: str):  # called under the lock, once per account
        order.append("account")
        if not first.is_set():
            first.set()
            until_queued(paper.lock)  # the candle asks while this account is observed
        time.sleep(0.005)  # as a query to PostgreSQL would: other threads run meanwhile
        return wallet(account_id)

    paper.paper_wallet = observed

    def candle() -> None:
        first.wait(10)
        with paper.lock:  # what ``on_candle`` takes first
            order.append("candle")

    stepping = threading.Thread(target=candle)
    stepping.start()
    monitor.run(T0)
    stepping.join(10)
    assert order.count("account") == len(accounts)
    assert order.index("candle") == 1  # right after the account it waited for


def test_a_quiet_hold_is_not_counted_unless_its_holder_says_it_changed_something() -> None:
    """The lease manager holds the lock quietly (what it changes marks its own markets): a
    trading step then sees no other holder since its last; a quiet holder that changes
    something else counts itself, and a counted hold is counted, nested in a quiet one or
    not."""
    lock = StepLock()
    with lock.quietly(), lock:  # the inner hold nested: the outer one's
        pass
    assert lock.entries == 0
    with lock.quietly():
        lock.count()
    assert lock.entries == 1
    with lock:
        pass
    assert lock.entries == 2
    try:
        lock.count()
    except RuntimeError:
        pass
    else:
        raise AssertionError("counted a lock nobody held")


def test_a_quiet_waiter_handed_the_lock_is_not_counted() -> None:
    lock = StepLock()
    lock.acquire()

    def hold_quietly() -> None:
        with lock.quietly():
            pass

    quiet = threading.Thread(target=hold_quietly)
    quiet.start()
    until_queued(lock)
    lock.release()  # handed over to the quiet waiter, first in line
    quiet.join(10)
    assert lock.entries == 1  # the first hold only
    assert lock.acquire(blocking=False)
    lock.release()
    assert lock.entries == 2
