"""The composition root's background tasks beside the live loop, each on a thread of its
own: the wallet monitor, reconciliation, the billing sweep, exchange clients let go, audit
checkpoints, and (PostgreSQL) the board every process publishes them on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.bootstrap_audit import take_audit_checkpoint

if TYPE_CHECKING:
    from application.trading import Trading


def _wallet_schedule(monitor, seconds: float, tick: float = 1.0):
    """The wallet monitor on a thread of its own (not in the live loop's step: observing
    balances is not a trading step), at start (unless the start's round just ran) and then
    every ``seconds``. With a ``turn`` (PostgreSQL) it runs on one process of the
    deployment at a time, as the billing sweep: the schedule looks every ``tick`` seconds
    whether a round is due, and only then whether the process holds the turn (the others
    show the task on standby and ask again at most every 5 seconds, taking over when the
    holder dies or stops); ``lock`` lets go of it at a graceful stop."""
    from application.audit_trail import CheckpointSchedule
    from application.task_health import NOT_DUE

    def now():  # the log's clock at each call, as the start's round (tests replace it)
        return monitor.trading.clock.now()

    if monitor.turn is None:  # (a tick when no round is due is none: not counted)
        return CheckpointSchedule(lambda: monitor.run_due(now(), idle=NOT_DUE), seconds,
                                  name="wallet-monitor", now=now)

    def run() -> object:
        at, last = now(), monitor.state.last_run_at
        if last is not None and at - last < monitor.every:  # (an account's error: next
            return NOT_DUE  # period, not next tick)
        schedule.health.on_standby(not monitor.my_turn())  # (raises: the round failed)
        if monitor.standby:
            return NOT_DUE
        return monitor.observe_all(at)

    schedule = CheckpointSchedule(run, tick, name="wallet-monitor", now=now)
    schedule.lock = monitor.turn
    return schedule


def _clients_schedule(paper, seconds: float, clock):
    """The api role runs no reconciliation, whose rounds let go of the exchange clients
    (and keys) of the accounts a process no longer trades live: this does it for the api
    (its users' own positions open live venues), every ``seconds``."""
    from application.audit_trail import CheckpointSchedule

    release = getattr(paper.live_venues, "release_unused", None)

    def run() -> None:
        if release is not None:
            with paper.lock:
                release({account for account, _, _ in paper.live_markets()})

    return CheckpointSchedule(run, seconds, name="exchange-clients", now=clock.now)


def _beside_the_loop(loop, reconciler, billing, tick: float = 1.0, *,
                     sweep_lock=None) -> list:
    """The live accounts' reconciliation and the billing sweep, each on a thread of its own
    (they ask an exchange, Stripe: seconds, timeouts), never in a trading step: each looks
    every ``tick`` seconds whether it is due by the loop's clock. What they append goes
    through the runner's lock, as a step's does; the read models are woken after. A tick
    when the task is not due is no round: a failure stays on ``/health`` until the task
    next runs and succeeds. ``sweep_lock`` (PostgreSQL: ``PostgresTaskLock``): the sweep
    runs only while this process holds it, on one process of the deployment at a time
    (it sweeps every user's subscriptions), confirmed before each subscription's step;
    the others show it on standby."""
    from application.audit_trail import CheckpointSchedule
    from application.task_health import NOT_DUE

    def beside(task, due, lock=None, health=None):
        def run() -> object:
            now = loop.clock.now()
            if not due(now):
                return NOT_DUE
            if lock is not None:
                health.on_standby(not lock.held())  # (raises: the round failed)
                if health.standby:
                    return NOT_DUE
            appended = task(now)
            if appended:
                loop.after_step(appended)
            return appended
        return run

    def now():  # the loop's clock at each call (tests replace it)
        return loop.clock.now()

    sweep = billing.daily_sweep
    if sweep_lock is not None:  # the turn confirmed before each subscription's step: a
        sweep.confirm = sweep_lock.confirm  # holder whose connection dropped mid-sweep
        # stops before its next write (another process may be sweeping by then)
    sweeping = CheckpointSchedule(None, tick, name="billing-sweep", now=now)
    sweeping.take = beside(sweep.run_if_due, sweep.due, sweep_lock, sweeping.health)
    sweeping.lock = sweep_lock  # (released at stop: another process takes it at once)
    reconciling = CheckpointSchedule(beside(reconciler.run_if_due, reconciler.due), tick,
                                     name="reconciliation", now=now)
    reconciling.lock = reconciler.turns  # (each account on one process at a time)
    return [reconciling, sweeping]


def _checkpoint_schedules(settings, trading: Trading, database) -> list:
    """Audit checkpoints appended to ``settings.checkpoint_file`` on a schedule, from the
    views on a connection of their own."""
    if not settings.checkpoint_file:
        return []
    import os

    from application.audit_trail import CheckpointSchedule
    from projections.store import open_view_store

    def take() -> None:
        store = open_view_store(database)
        try:
            checkpoint = take_audit_checkpoint(trading, store, database,
                                               sign=settings.checkpoint_signing_key,
                                               actor="system:audit-checkpoints")
        finally:
            store.close()
        if checkpoint is not None:
            fd = os.open(settings.checkpoint_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                         0o644)
            with os.fdopen(fd, "a") as file:
                file.write(checkpoint.to_json() + "\n")

    def now():  # the log's clock at each call (tests replace it)
        return trading.clock.now()

    return [CheckpointSchedule(take, settings.checkpoint_seconds, now=now)]


def _task_rows(database):
    from adapters.event_store.task_board import PostgresTaskRows

    return PostgresTaskRows(database)


def open_task_board(rows, runtime, role: str):
    """On PostgreSQL, this process's background tasks published (``rows``) where every
    process of the deployment reads them (``/health``'s ``background.deployment``)."""
    import os
    import socket

    from application.task_board import Process, TaskBoard

    host, pid = socket.gethostname(), os.getpid()
    name = f"{role}-{host}-{pid}-{os.urandom(2).hex()}"  # (a pid is used again)
    return TaskBoard(rows, lambda: runtime.schedules, Process(name, role, host, pid))
