"""The composition root's engine on a shared database (PostgreSQL): the bots an engine
leases, the users' exposure holds fenced in its appends, and what it does when another
process appends."""

from __future__ import annotations


def open_engine_leases(database, trading, paper, *, seconds: float | None = None,
                       worker: str | None = None):
    """On PostgreSQL, an engine (``--role engine`` or ``all``) trades the bots it leases:
    the lease manager of ``paper`` (a ``LeasedPaperTrading``), its appends fenced in
    ``trading``'s store. ``seconds``: else ``TRADETAPE_LEASE_SECONDS`` (default 10)."""
    import os

    from adapters.event_store.leases import PostgresLeases
    from application.lease_fence import current_fence
    from application.leases import LeaseManager, lease_seconds
    from application.running_bots import RunningBots

    trading.recorder.fence_source = current_fence  # checked in every append's transaction
    if paper.risk is not None:
        open_exposure_holds(database, trading, paper.risk)

    def book():  # the bots that run, from the paper book (wired after this)
        return paper.restart_book() if paper.restart_book is not None else None

    running = RunningBots(trading, restart_book=book)
    if paper.risk is not None:  # a user with a bot that cannot be read: their count
        paper.risk.unreadable = running.unreadable  # limits open nothing meanwhile
    manager = LeaseManager(PostgresLeases(database, worker), paper, running,
                           seconds if seconds is not None else lease_seconds(os.environ),
                           loaded=running.take_loaded)
    paper.leases = manager
    return manager


def open_exposure_holds(database, trading, risk) -> None:
    """On PostgreSQL, where other processes decide buys for the same users: ``risk``'s
    exposure stamps and holds (``application/exposure_holds.py``), checked in ``trading``'s
    appends. Once per process (an engine's leases wire it too)."""
    from adapters.event_store.exposure_stamps import PostgresExposureStamps
    from application.exposure_holds import ExposureHolds
    from application.lease_fence import current_fence

    trading.recorder.fence_source = current_fence
    if risk.holds is None:
        risk.holds = ExposureHolds(PostgresExposureStamps(database))


def _event_listener(database, trading, runtime):
    """What this process does when another appends (PostgreSQL NOTIFY)."""
    from adapters.event_store.notify import EventListener

    def on_events() -> None:
        if runtime.leases is not None:
            runtime.leases.wake()  # a bot started or released, a worker joined
        if runtime.role != "engine":
            runtime.refresh()  # read models (role all), then subscribers

    return EventListener(database, trading.recorder.channel_name, on_events)
