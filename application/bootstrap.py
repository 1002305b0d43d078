"""The composition root: the one place that chooses adapters (clock, ids, store) and wires
them into the applications. Commands and servers start here; tests may inject their own."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from adapters.clock import RandomIds, SystemClock
from application.settings import parse_database_url, prepare

if TYPE_CHECKING:  # imported where used: `backtest` parses its file meanwhile
    from application.trading import Trading
    from domain.ports import Clock, IdSource

# The library's in-memory store, serialising each event when it is first read: a memory
# store's events are mostly never read (see adapters/event_store/memory.py).
MEMORY_EVENT_STORE = "adapters.event_store.memory"
# The library's PostgreSQL store, creating its tables under the DDL advisory lock, so that
# processes opening one database at once all come up (see adapters/event_store/postgres.py).
POSTGRES_EVENT_STORE = "adapters.event_store.postgres"
# The library's SQLite store, keeping the time each event was recorded beside it and
# sealing every event with the audit key (see adapters/event_store/sqlite.py and
# sealing.py; PostgreSQL's store above does both too).
SQLITE_EVENT_STORE = "adapters.event_store.sqlite"
ENGINE_MODULES = ("application.trading", "application.backtest", "adapters.exchanges.paper",
                  MEMORY_EVENT_STORE)


def open_trading(
    url: str | None = None, *, clock: Clock | None = None, ids: IdSource | None = None
) -> Trading:
    """A :class:`Trading` on the store named by ``url`` (else ``TRADETAPE_DATABASE_URL``,
    else the default SQLite file), with the wall clock and random ids unless given.
    The caller closes it."""
    from application.trading import Trading

    database = parse_database_url(url)
    prepare(database)
    env = dict(database.env)
    if database.kind == "memory":
        env["PERSISTENCE_MODULE"] = MEMORY_EVENT_STORE
    else:
        env["PERSISTENCE_MODULE"] = (POSTGRES_EVENT_STORE if database.kind == "postgres"
                                     else SQLITE_EVENT_STORE)
        env.update(_audit_key_file(database))
        env.update(_snapshotting())
    return Trading(clock=clock or SystemClock(), ids=ids or RandomIds(), env=env)


def _snapshotting() -> dict[str, str]:
    """Snapshots of long-lived aggregates on stores that outlive the process (a disposable
    cache: ``TRADETAPE_SNAPSHOTS=0`` turns it off; see application/snapshots.py)."""
    import os

    return {} if os.environ.get("TRADETAPE_SNAPSHOTS", "1") == "0" else {
        "IS_SNAPSHOTTING_ENABLED": "y"}


def backtest(
    candles_path: str,
    config,
    *,
    fee_rate,
    balance=None,
    store_url: str = "memory",
    seed: str | None = None,
    keep_deals: bool = False,
    keep_equity: bool = False,
    on_progress=None,
    period: tuple[int | None, int | None] | None = None,
):
    """Run a backtest on a CSV file with the paper exchange; keep its events in ``store_url``.
    ``period``: only the candles opening from ``period[0]`` until ``period[1]`` (UTC ms,
    None: unbounded).

    The run's ids come from ``seed`` (recorded in its events), so re-running with the same
    seed, candles and configuration reproduces the stored events exactly."""
    return run_backtest_on(
        load_backtest_candles(candles_path, period), config, fee_rate=fee_rate,
        balance=balance, store_url=store_url, seed=seed or RandomIds().new_id().hex,
        keep_deals=keep_deals, keep_equity=keep_equity, on_progress=on_progress, period=period,
    )


def compare(candles_path: str, configs, *, fee_rate, balance=None, seed: str = "compare",
            period: tuple[int | None, int | None] | None = None, on_progress=None,
            keep_equity: bool = False):
    """Backtest every configuration on the same candles (read once), each into a memory
    store of its own with ids from ``seed``: ``(candles, results)``, results in the order
    of ``configs``."""
    candles = load_backtest_candles(candles_path, period)
    results = []
    for done, config in enumerate(configs, start=1):
        results.append(run_backtest_on(candles, config, fee_rate=fee_rate, balance=balance,
                                       store_url="memory", seed=seed, period=period,
                                       keep_equity=keep_equity))
        if on_progress is not None:
            on_progress(done, len(configs))
    return candles, results


def load_backtest_candles(candles_path: str, period: tuple[int | None, int | None] | None):
    """The file's candles (those of ``period`` when given), read and hashed while numpy
    and pyarrow import, and parsed while the engine's modules do (all mostly outside the
    GIL): or, for bytes parsed before, mapped from their parsed copy
    (adapters/marketdata/candle_cache.py)."""
    import importlib
    import os
    from concurrent.futures import ThreadPoolExecutor

    from adapters.marketdata.candle_file import caching_off, read_candle_file

    # Recorded in the run's events: absolute, so `replay --check` finds it from anywhere.
    path = os.path.abspath(candles_path)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candles") as loader:
        # A large file is hashed by its ends while its parsed copy may be read in its place
        reading = loader.submit(read_candle_file, path, ends_only=not caching_off())
        from adapters.marketdata.candle_cache import cache_directory, parse_cached

        # A file backtested before (the same bytes) is read from its parsed copy
        cache = cache_directory()
        loading = loader.submit(lambda read=reading: parse_cached(read.result(), cache))
        for module in ENGINE_MODULES:
            importlib.import_module(module)
        candles = loading.result()
        del reading, loading  # the file's bytes (as large as the file) are no longer needed
    return _in_period(candles, period)


def _in_period(candles, period: tuple[int | None, int | None] | None):
    """The candles of ``period`` (a run over part of a file), or all of them."""
    from application.backtest import ms_to_datetime
    from domain.errors import DomainError

    if period is None:
        return candles
    start, end = period
    shown = [("its start" if ms is None else ms_to_datetime(ms).isoformat()) for ms in period]
    if start is not None and end is not None and start >= end:
        raise DomainError(f"a period must start before it ends: from {shown[0]} to {shown[1]}",
                          code="INVALID_PERIOD", field="period")
    chosen = candles.between(start, end)
    if not len(chosen):
        until = "its end" if end is None else shown[1]
        raise DomainError(f"{candles.source} has no candle opening from {shown[0]} until "
                          f"{until}", code="NO_CANDLES", field="period")
    return chosen


def run_backtest_on(candles, config, *, fee_rate, balance, store_url, seed, trading=None,
                    **options):
    """Wire the paper exchange and seeded ids; ``trading`` (kept open) or ``store_url``."""
    from adapters.clock import SequentialIds
    from adapters.exchanges.paper import PaperExchange
    from application.backtest import run_backtest

    venue = PaperExchange(config.pair, fee_rate=fee_rate, quote_balance=balance)
    ids = SequentialIds(seed)
    app = trading or open_trading(store_url, ids=ids)
    try:
        return run_backtest(
            candles, config, venue=venue, ids=ids, append=app.append_collected,
            run_seed=seed, fee_rate=fee_rate, balance=balance, **options,
        )
    finally:
        if trading is None:
            app.close()


def rerun_backtest(run, candles_dir: str | None = None):
    """Re-run a stored backtest from its recorded inputs into a fresh memory store; returns
    that store's log. The candles file must still be there, byte for byte; with
    ``candles_dir``, a file of the same name in that folder is used when the recorded path
    holds none (the run stored elsewhere; its SHA-256 still has to match)."""
    import dataclasses
    import os

    from adapters.marketdata.csv_candles import load_candles
    from application.backtest import summary_keys_of
    from application.replay import read_log
    from domain.errors import DomainError

    path = run.candles_source
    if candles_dir is not None and not os.path.exists(path):
        path = os.path.join(candles_dir, os.path.basename(path))
    candles = load_candles(path)  # CANDLES_UNREADABLE if it is not there
    if run.candles_sha256 and candles.sha256 != run.candles_sha256:
        raise DomainError(
            f"{path} changed since the run (sha256 {candles.sha256[:12]}…, "
            f"recorded {run.candles_sha256[:12]}…)", code="CANDLES_CHANGED")
    # The re-run records the path the run recorded, wherever the file is read from now.
    candles = dataclasses.replace(candles, source=run.candles_source)
    fresh = open_trading("memory")
    run_backtest_on(_in_period(candles, run.period), run.config, fee_rate=run.fee_rate,
                    balance=run.balance, store_url="memory", seed=run.run_seed,
                    trading=fresh, summary_keys=summary_keys_of(run.summary),
                    period=run.period)
    return list(read_log(fresh))


def open_identity(
    url: str | None = None,
    *,
    trading: Trading | None = None,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    secrets=None,
    mailer=None,
    hasher=None,
    secret_key: str | None = None,
    starting_balance=None,
    bcrypt_rounds: int | None = None,
):
    """An :class:`~application.identity.Identity` on the store named by ``url`` (as
    :func:`open_trading`), its data keys and email index in tables of that same database.

    ``trading``: an open Trading on that store to share (the caller closes it); otherwise
    one is opened and ``Identity.close()`` closes it. Unless given: the server secret and the
    master key from ``TRADETAPE_SECRET_KEY`` / ``TRADETAPE_MASTER_KEY``, else from key files
    made on first use outside the database (``adapters/security/key_files.py``), mail through
    ``TRADETAPE_SMTP_URL`` (else the console), bcrypt cost ``TRADETAPE_BCRYPT_ROUNDS``
    (else 12), settings from ``TRADETAPE_*`` (see ``application.identity_settings``)."""
    import os

    from adapters.mailer import mailer_from_environ
    from adapters.security.email_index import HmacEmailIndex
    from adapters.security.key_files import SECRET_KEY_ENV, key_locations
    from adapters.security.keys import AesGcmDataKeyStore
    from adapters.security.master_keys import load_master_keys, wrap_legacy_keys
    from adapters.security.passwords import DEFAULT_ROUNDS, BcryptPasswordHasher
    from adapters.security.server_secret import derive_key, load_server_secret, secret_changed
    from adapters.security.tables import open_tables
    from adapters.security.tokens import HmacTokenSigner, RandomSecrets
    from application.identity import Identity
    from application.identity_settings import IdentitySettings

    database = parse_database_url(url)
    prepare(database)
    settings = IdentitySettings.from_environ(starting_balance=starting_balance)
    rounds = bcrypt_rounds or int(os.environ.get("TRADETAPE_BCRYPT_ROUNDS") or DEFAULT_ROUNDS)
    owned = trading is None
    app = trading or open_trading(url, clock=clock, ids=ids)
    tables = open_tables(database)
    try:
        environ = {**os.environ, **({SECRET_KEY_ENV: secret_key} if secret_key else {})}
        locations = key_locations(database, environ)
        master = load_master_keys(tables, locations)
        wrap_legacy_keys(tables, master)  # the first start after an upgrade
        secret = load_server_secret(tables, environ, locations.secret)
        hasher = hasher or BcryptPasswordHasher(rounds)
    except BaseException:
        tables.close()
        if owned:
            app.close()
        raise

    def close() -> None:
        tables.close()
        if owned:
            app.close()

    identity = Identity(
        app, hasher=hasher, keys=AesGcmDataKeyStore(tables, master),
        emails=HmacEmailIndex(tables, derive_key(secret, "email-index")),
        signer=HmacTokenSigner(derive_key(secret, "access-tokens")),
        secrets=secrets or RandomSecrets(), mailer=mailer or mailer_from_environ(),
        settings=settings, on_close=close,
    )
    if secret_changed(tables, secret):  # rotated: the email index was keyed by the old one
        identity.rebuild_email_index()
    return identity


def open_exchange_accounts(identity, *, connector=None, allow_live: bool = False,
                           environ=None):
    """:class:`~application.exchange_accounts.ExchangeAccounts` over ``identity``'s log and
    data keys; keys checked through ccxt (``TRADETAPE_SANDBOX_HOST`` from ``environ``,
    else the process environment, rewrites sandbox URLs) unless ``connector`` is given."""
    import os

    from application.exchange_accounts import ExchangeAccounts

    if connector is None:
        from adapters.exchanges.ccxt_client import sandbox_host_from
        from adapters.exchanges.ccxt_connector import CcxtExchangeConnector

        env = os.environ if environ is None else environ
        connector = CcxtExchangeConnector(sandbox_host=sandbox_host_from(dict(env)))
    return ExchangeAccounts(identity.trading, identity.data_keys, connector,
                            allow_live=allow_live, quote_asset=identity.settings.quote_asset)


def rotate_master_key(url: str | None = None):
    """Re-wrap every data key of the store ``url`` names under a new master key (see
    ``adapters/security/master_keys.py``); what was done, and where the new key is."""
    from adapters.security.key_files import key_locations
    from adapters.security.master_keys import rotate
    from adapters.security.tables import open_tables

    database = parse_database_url(url)
    prepare(database)
    tables = open_tables(database)
    try:
        return rotate(tables, key_locations(database))
    finally:
        tables.close()


class _InProcessReadModels:
    """Every projection followed inside the server process (see ``projections/``).

    Read models are disposable: views whose tables an older version made (another shape)
    are rebuilt from the events at start, rather than keeping the server down until an
    operator runs ``tradetape projections rebuild``. A projection that cannot advance (or
    be rebuilt) is reported by ``problems()`` and retried, never raised: the server starts
    and serves with the others (``projections.supervisor``)."""

    def __init__(self, trading: Trading, database):
        import sys

        from projections.registry import PROJECTIONS
        from projections.store import open_view_store
        from projections.supervisor import SupervisedProjections

        self.trading, self._store = trading, open_view_store(database)
        self.projections = SupervisedProjections(
            trading, self._store, list(PROJECTIONS.values()),
            report=lambda text: sys.stderr.write(text + "\n"),
            check_log=seal_check(trading, database.url))
        self._book_offered = threading.Event()  # (set at once where there is no thread)
        self._opening = None
        if self._store.kind == "postgres":
            # Their open (every table read in one snapshot: ~3 s at 10M events, two thirds
            # of it waiting on PostgreSQL) runs beside the engine's load of its bots, which
            # waits only for the paper book (loaded first). The store's connection is this
            # thread's alone until ``_opened``; SQLite's is shared with the restart book.
            from application.background_open import BackgroundOpen
            from projections.runner import book_offered

            book_offered(self._store, self._book_offered)
            self._opening = BackgroundOpen(self.projections.start, name="views-open",
                                           done=self._book_offered)
        else:
            self.projections.start()
            self._book_offered.set()

    @property
    def store(self):
        """The views' store, once the projections' open no longer uses it."""
        self._opened()
        return self._store

    def _opened(self) -> None:
        """The projections' open is over (it raises here what it raised)."""
        if self._opening is not None:
            self._opening.wait()

    def wait_open(self) -> None:
        """Until the views' tables exist and hold what the open found (readers of their
        own connections, e.g. the api's read side, wait here at their first read)."""
        self._opened()

    def is_open(self) -> bool:
        """Whether that open is over (without waiting for it)."""
        return self._opening is None or self._opening.finished

    def catch_up(self) -> int:
        self._opened()
        return self.projections.catch_up()

    def lag(self) -> dict[str, int]:
        self._opened()
        return self.projections.lag()

    def problems(self) -> list[dict]:
        self._opened()
        return self.projections.problems()

    def close(self) -> None:
        if "restart_book" in self.__dict__:
            self.restart_book.close()
        if self._opening is not None:
            self._opening.join()  # (what it raised, the start raised already)
        self._store.close()

    @cached_property
    def restart_book(self):
        """What the paper runner restores at start, from the ``paper_book`` projection's
        tables and the events after their position (projections/paper_book.py): the copy
        the projector loaded, once it offered it."""
        from projections.paper_book import BookAtHead

        return _AfterOffer(BookAtHead(self.trading, self._store), self._book_offered)


class _AfterOffer:
    """A restart book asked for once the projector offered its copy of the paper book (or
    its open ended without): else it would read the tables a second time."""

    def __init__(self, book, offered):
        self.book, self.offered = book, offered

    def __call__(self):
        self.offered.wait()
        return self.book()

    def close(self) -> None:
        self.book.close()


class _SharedReadModels:
    """The views another process keeps up to date (``serve --role projections``): this
    one only reads them, and tells their lag from their tracking rows."""

    WAIT_SECONDS = 2.0  # the longest a command's answer waits for the views
    # Looked at again without a word from the views: while LISTEN is not (yet) in place,
    # or from a projections process that does not NOTIFY (elsewhere than PostgreSQL)
    RECHECK_LISTENING, RECHECK_POLLING = 0.5, 0.02  # seconds

    def __init__(self, trading: Trading, database):
        import threading

        from projections.store import open_view_store

        self.trading, self.database = trading, database
        self.store = open_view_store(database)
        self._moved = threading.Condition()  # the views committed a batch (their NOTIFY)
        self._moves = 0
        self._listener = None
        self._tracked = False  # the tracking table exists (it is never dropped)

    def catch_up(self) -> int:
        """Wait (a little) until the views hold what was written so far: an answer made
        after a command, or an event published, reads its own writes. Woken by the views'
        NOTIFY, the tracking rows are read once per batch they commit, not every 20 ms."""
        import time

        self._follow()
        head = self.trading.recorder.max_notification_id() or 0
        deadline = time.monotonic() + self.WAIT_SECONDS
        recheck = self.RECHECK_LISTENING if self._listener else self.RECHECK_POLLING
        while True:
            with self._moved:
                seen = self._moves
            if max(self._behind(head).values(), default=0) == 0:
                return 0
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            with self._moved:  # a batch committed since ``seen``: at once
                self._moved.wait_for(lambda seen=seen: self._moves != seen,
                                     min(left, recheck))

    def _follow(self) -> None:
        """LISTEN to the views' batches (PostgreSQL), from the first catch-up on."""
        if self._listener is not None or self.store.kind != "postgres":
            return
        from adapters.event_store.notify import EventListener

        self._listener = EventListener(self.database, self.store.channel, self._views_moved)
        self._listener.start()

    def _views_moved(self) -> None:
        with self._moved:
            self._moves += 1
            self._moved.notify_all()

    def lag(self) -> dict[str, int]:
        return self._behind(self.trading.recorder.max_notification_id() or 0)

    def _behind(self, head: int) -> dict[str, int]:
        from projections.registry import PROJECTIONS
        from projections.store import TRACKING

        self._tracked = self._tracked or self.store.table_exists(TRACKING)
        rows = (self.store.query(f"SELECT name, position FROM {self.store.q(TRACKING)}")
                if self._tracked else [])
        applied = dict(rows)
        return {name: max(head - int(applied.get(name, 0)), 0) for name in PROJECTIONS}

    def problems(self) -> list[dict]:
        from projections.supervisor import faults

        return list(faults(self.store).values())

    @cached_property
    def restart_book(self):
        """The paper book the projections process keeps (see ``_InProcessReadModels``)."""
        from projections.paper_book import BookAtHead

        return BookAtHead(self.trading, self.store)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if "restart_book" in self.__dict__:
            self.restart_book.close()
        self.store.close()


def open_projection_worker(database_url: str | None):
    """``serve --role projections``: every projection, followed in this process alone.
    Returns the worker and what to close after it."""
    import sys

    from application.paper_heap import StepSurvivors
    from application.projection_worker import ProjectionWorker
    from projections.registry import PROJECTIONS
    from projections.store import open_view_store
    from projections.supervisor import SupervisedProjections

    database = parse_database_url(database_url)
    prepare(database)
    trading = open_trading(database_url)
    store = open_view_store(database)
    # What its batches leave alive (every projection's state: ~120,000 tracked objects at
    # 10,000 bots) frozen after each, so the collector's passes walk only what is new: on
    # a 58,600-event take-profit wave 0.19 -> 0.004 s of the collector, process 3.10 ->
    # 2.88 s of processor time (scripts/bench_wave.py, alternated twice).
    projections = SupervisedProjections(
        trading, store, list(PROJECTIONS.values()),
        report=lambda text: sys.stderr.write(text + "\n"),
        check_log=seal_check(trading, database.url), survivors=StepSurvivors())
    projections.start()
    # Alone in its process, nothing wakes it: it looks at the log five times a second.
    return ProjectionWorker(projections, poll=0.2), [store, trading]


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


def open_runtime(settings, role: str = "all"):
    """Everything ``tradetape serve`` runs, wired: the wall clock, random ids, the paper
    exchange, a replayed market feed, identity, read models and the live loop. ``role``:
    ``all`` (everything, the default), ``api`` (GraphQL; trades nothing, reads views kept
    by a projections process) or ``engine`` (trades its leased bots; no views)."""
    from adapters.exchanges.paper import PaperExchange
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.replay_feed import ReplayFeed
    from adapters.marketdata.shipped import shipped_series
    from application.change_feed import ChangeFeed
    from application.funding import Funding
    from application.leased_paper import ApiPaperTrading, LeasedPaperTrading
    from application.live_loop import LiveLoop
    from application.market_tape import MarketTape
    from application.paper_trading import PaperTrading
    from application.reconciliation import Reconciler
    from application.risk_limits import RiskLimits
    from application.runtime import Runtime
    from application.wallet_monitor import WalletMonitor

    database = parse_database_url(settings.database_url)
    prepare(database)
    clock, ids = SystemClock(), RandomIds()
    trading = open_trading(settings.database_url, clock=clock, ids=ids)
    identity = open_identity(settings.database_url, trading=trading, clock=clock, ids=ids)

    def venue(pair, quote, base):
        return PaperExchange(pair, quote_balance=quote, base_balance=base)

    exchange_accounts = open_exchange_accounts(identity, allow_live=settings.allow_live)
    risk = RiskLimits(trading)
    shared = database.kind == "postgres"  # other processes may trade on this database
    paper_class = (ApiPaperTrading if role == "api" else
                   LeasedPaperTrading if shared else PaperTrading)
    paper = paper_class(trading, ids, venue, live_venues=open_live_venues(exchange_accounts),
                        risk=risk)
    # the background tasks' rows and turns (PostgreSQL: one connection, opened when used)
    task_rows = _task_rows(database) if shared else None
    reconciler = Reconciler(paper, settings.reconcile_seconds, turns=(
        task_rows.turns("reconciliation") if shared else None))
    monitor = WalletMonitor(Funding(trading, paper), paper, live=exchange_accounts,
                            every_seconds=settings.wallet_seconds, turn=(
                                task_rows.turns("wallet-monitor") if shared else None))
    if settings.live_feed is not None and not settings.demo:
        feed = open_live_feed(settings.live_feed, pairs=paper.traded_pairs)
    else:
        # A fixed epoch (TRADETAPE_FEED_EPOCH): where the replayed market stands follows
        # from the clock alone, so a restarted server continues the same market.
        feed = ReplayFeed(load_candles(shipped_series(settings.feed)), settings.feed_pair,
                          speed=settings.speed, epoch=settings.feed_epoch)
    billing = open_billing(trading, paper)
    exchange_accounts.entitlements = billing.entitlements  # live accounts need live_trading
    loop = LiveLoop(clock, [feed], paper, tape=MarketTape(),
                    on_step=_step_log(settings.step_log))
    library = open_candle_library(settings)
    # every user's subscriptions: swept by one process of the deployment at a time
    sweep_lock = task_rows.turns("billing-sweep") if shared else None
    read_models = (_InProcessReadModels(trading, database) if role == "all"
                   else _SharedReadModels(trading, database))
    paper.restart_book = read_models.restart_book
    runtime = Runtime(
        settings=settings, clock=clock, trading=trading, identity=identity, billing=billing,
        webhook_limit=billing.entitlements.webhook_limit, paper=paper, loop=loop,
        read_models=read_models, role=role, changes=ChangeFeed(trading),
        schedules=[*(_checkpoint_schedules(settings, trading, database)
                     if role != "engine" else ()),
                   *([_wallet_schedule(monitor, clock, settings.wallet_seconds),
                      *_beside_the_loop(loop, reconciler, billing,
                                        sweep_lock=sweep_lock)]
                     if role != "api" else
                     [_clients_schedule(paper, settings.reconcile_seconds, clock)])],
        exchange_accounts=exchange_accounts, reconciler=reconciler, risk=risk,
        risk_check=risk.for_positions(), wallet_monitor=monitor, candle_library=library,
        backtests=open_backtest_jobs(trading, library),
        candle_fetches=open_candle_fetches(settings, ids),
        rebuilds=open_projection_rebuilds(trading, database, ids))
    if shared and role != "api":
        runtime.leases = open_engine_leases(database, trading, paper)
    elif shared:  # (an engine's leases wire it)
        open_exposure_holds(database, trading, risk)
    if shared:
        runtime.listener = _event_listener(database, trading, runtime)
        runtime.task_board = open_task_board(task_rows, runtime, role)
    return runtime


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


def open_billing(trading: Trading, paper=None, environ=None):
    """Plans, subscriptions and Stripe as ``TRADETAPE_STRIPE_*`` / ``TRADETAPE_BILLING`` say
    (``application.billing_settings``); Stripe through its library when a key is set."""
    import os

    from adapters.payments.stripe_gateway import verified_event
    from application.billing import Billing, BotSlots
    from application.billing_settings import BillingSettings

    settings = BillingSettings.from_environ(os.environ if environ is None else environ)
    gateway = None
    if settings.api_key:
        from adapters.payments.stripe_gateway import StripeGateway

        gateway = StripeGateway(settings.api_key, settings.api_base)
    slots = BotSlots(trading, paper.lock if paper else None, paper.follow if paper else None)
    return Billing(trading, settings, gateway=gateway, slots=slots, verify=verified_event)


def open_candle_library(settings):
    """The shipped series, then the server's candle directory (``TRADETAPE_CANDLE_DIR``)."""
    from pathlib import Path

    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series
    from application.candle_library import CandleLibrary

    directories = [shipped_series(SHIPPED_FIRST).parent]
    if settings.candle_dir:
        directories.append(Path(settings.candle_dir))
    fetched = candle_fetch_directory(settings)
    if fetched is not None and fetched not in directories:
        directories.append(fetched)
    return CandleLibrary(directories, load_candles)


def candle_fetch_directory(settings):
    """Where series fetched for users are written (``fetchCandles``): the candle directory,
    else ``candles/`` beside a SQLite store; None for another store without one."""
    from pathlib import Path

    if settings.candle_dir:
        directory = Path(settings.candle_dir)
    else:
        database = parse_database_url(settings.database_url)
        if database.sqlite_path is None:
            return None
        directory = database.sqlite_path.parent / "candles"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # the server runs on; a fetch says CANDLE_DIR_NOT_SET
        import logging

        logging.getLogger("tradetape.candles").warning(
            "cannot make the candle directory %s (%s): fetched series are off", directory,
            type(error).__name__)
        return None
    return directory


def open_candle_fetches(settings, ids):
    """Candle series downloaded for users in the background, through the same ccxt history
    as ``tradetape candles fetch`` (``TRADETAPE_SANDBOX_HOST`` for sandboxes)."""
    from adapters.marketdata.candle_csv_writer import CandleCsvWriter
    from application.candle_fetches import CandleFetches

    def history(exchange_id: str, sandbox: bool):
        return open_candle_download(exchange_id, sandbox=sandbox, out="")[0]

    return CandleFetches(candle_fetch_directory(settings), history, CandleCsvWriter, ids)


def open_projection_rebuilds(trading, database, ids):
    """Rebuilds asked for from the API, on a view-store connection of their own, refusing a
    log whose seals do not hold (as ``tradetape projections rebuild`` does)."""
    from application.projection_rebuilds import ProjectionRebuilds
    from domain.errors import DomainError
    from projections.rebuild import rebuild
    from projections.registry import select
    from projections.runner import ProjectionError
    from projections.store import open_view_store

    def known(names):
        try:
            return [cls.name for cls in select(list(names or []))]
        except ProjectionError as error:
            raise DomainError(error.message, code=error.code, field="names") from None

    def run(names, on_progress):
        store = open_view_store(database)
        try:
            return rebuild(trading, store, select(list(names)), on_progress=on_progress,
                           check_log=seal_check(trading, database.url))
        finally:
            store.close()

    return ProjectionRebuilds(run, known, ids)


SHIPPED_FIRST = "binance_BTC_USDT-1m-2025-11.csv"


def open_backtest_jobs(trading, library):
    """Backtests run for users in the background, recorded in ``trading``'s log, on series
    of ``library`` only."""
    from adapters.clock import SequentialIds
    from application.backtest_jobs import EQUITY_POINTS, BacktestJobs

    def run(asked, seed, on_progress):
        period = None if asked.period == (None, None) else asked.period
        candles = load_backtest_candles(str(library.path(asked.candles_file)), period)
        return run_backtest_on(candles, asked.config, fee_rate=asked.fee_rate,
                               balance=asked.balance, store_url="memory", seed=seed,
                               trading=trading, keep_deals=True, on_progress=on_progress,
                               period=period, equity_points=EQUITY_POINTS)

    def rerun(run_id):
        from domain.backtests import BacktestRun

        return rerun_backtest_result(trading.load(run_id, BacktestRun))

    return BacktestJobs(trading, trading.ids, run, lambda seed: SequentialIds(seed).new_id(),
                        rerun)


def rerun_backtest_result(run):
    """A stored run made again in memory, with its deals and exact equity points."""
    from adapters.marketdata.csv_candles import load_candles
    from application.backtest import summary_keys_of
    from application.backtest_jobs import EQUITY_POINTS
    from domain.errors import DomainError

    candles = load_candles(run.candles_source)
    if run.candles_sha256 and candles.sha256 != run.candles_sha256:
        raise DomainError(f"{run.candles_source} changed since the run", code="CANDLES_CHANGED")
    return run_backtest_on(_in_period(candles, run.period), run.config, fee_rate=run.fee_rate,
                           balance=run.balance, store_url="memory", seed=run.run_seed,
                           summary_keys=summary_keys_of(run.summary), period=run.period,
                           keep_deals=True, equity_points=EQUITY_POINTS)


def open_market_rules(exchange_id: str, *, sandbox: bool, environ=None):
    """``rules(pair)``: the exchange's steps and minimums for a pair, read through ccxt
    with no keys (markets are public); PAIR_NOT_TRADED for a pair it does not list."""
    import os

    from adapters.exchanges.ccxt_client import sandbox_host_from
    from adapters.exchanges.ccxt_venue import CcxtExchange

    env = dict(os.environ if environ is None else environ)
    exchange = CcxtExchange.open(exchange_id, sandbox=sandbox,
                                 sandbox_host=sandbox_host_from(env) if sandbox else None)
    return exchange.market_rules


def open_live_venues(exchange_accounts, environ=None):
    """``venue(account, pair)``: a live account's venue on one pair, through ccxt (one
    client per account, shared by its pairs; ``TRADETAPE_SANDBOX_HOST`` for sandboxes);
    ``venue.reconciliation_exchange(account_id)``: the reconciliation's, a client of its own.
    The account's keys are unsealed here, in memory only."""
    import os

    from application.live_venue import LiveVenue

    env = dict(os.environ if environ is None else environ)
    exchanges: dict = {}

    def exchange_of(account):
        view = exchange_accounts.account(account.id)
        exchange = exchanges.get(account.id)  # (released meanwhile: made again)
        if exchange is None:
            exchange = exchanges[account.id] = _ccxt_exchange(
                view, env, credentials=exchange_accounts.credentials(account.id),
                resend_unknown=False)
        return exchange, view

    def venue(account, pair: str):
        exchange_accounts.check_can_trade(account.id)
        exchange, view = exchange_of(account)
        return LiveVenue(exchange, pair, account_id=str(account.id), sandbox=view.sandbox)

    def market_rules(account, pair: str):
        """The exchange's rules for ``pair``; None where this server may not trade the
        account (nothing is asked of an exchange it will not trade on) or the exchange
        cannot be reached now (the venue checks again before each order)."""
        from domain.errors import DomainError

        try:
            exchange_accounts.check_can_trade(account.id)
            return rules_exchange(account).market_rules(pair)
        except DomainError as error:
            if error.code == "PAIR_NOT_TRADED":
                raise
            return None

    public: dict = {}  # (exchange, sandbox) -> a client with no keys

    def rules_exchange(account):
        """The account's own client where this process trades it (its markets loaded),
        else one with no keys per exchange: the rules are public, and a process that only
        shows them (the api: forms, a bot's checks) keeps no account's keys for them (the
        api used to keep a client with its keys for every account ever shown, for good:
        only a reconciliation round, which the api never runs, let them go)."""
        exchange = exchanges.get(account.id)
        if exchange is not None:
            return exchange
        view = exchange_accounts.account(account.id)
        exchange = public.get((view.exchange, view.sandbox))
        if exchange is None:
            exchange = public[view.exchange, view.sandbox] = _ccxt_exchange(view, env)
        return exchange

    reconciling: dict = {}

    def reconciliation_exchange(account_id: str):
        """The account's exchange for the reconciliation, which asks it from a thread of its
        own: a ccxt client of its own (own HTTP session and rate limiter; the key's nonces
        and, where the exchange needs it, its turn shared with the venue's client through
        ``ccxt_client.KeyGate``), never the trading step's client on two threads."""
        from uuid import UUID

        key = UUID(account_id)
        exchange = reconciling.get(key)
        if exchange is None:
            exchange = reconciling[key] = _ccxt_exchange(
                exchange_accounts.account(key), env,
                credentials=exchange_accounts.credentials(key), resend_unknown=False)
        return exchange

    def release_unused(traded: set[str]) -> None:
        """Drop the clients kept for accounts this runner no longer trades live (their
        bots stopped, the account removed): their keys leave memory with them, and each
        key's gate once no client of it is left (``ccxt_client.KeyGate``). A venue still
        in use keeps its own client; asked again, an account gets a new one, on the same
        gate while any old one lives."""
        for cache in (exchanges, reconciling):
            for account_id in [a for a in cache if str(a) not in traded]:
                cache.pop(account_id, None)

    venue.market_rules = market_rules
    venue.reconciliation_exchange = reconciliation_exchange
    venue.release_unused = release_unused
    return venue


def _ccxt_exchange(view, env, credentials=None, **kwargs):
    """A ccxt client for an account's exchange (``view``: its exchange id and whether a
    sandbox, at ``TRADETAPE_SANDBOX_HOST`` when set); ``credentials`` None: no keys."""
    from adapters.exchanges.ccxt_client import sandbox_host_from
    from adapters.exchanges.ccxt_venue import CcxtExchange

    return CcxtExchange.open(view.exchange, sandbox=view.sandbox, credentials=credentials,
                             sandbox_host=sandbox_host_from(env) if view.sandbox else None,
                             **kwargs)


def open_live_feed(live, *, pairs):
    """The exchange's closed 1-minute candles of ``pairs()`` (``TRADETAPE_FEED=ccxt:...``,
    see ``application.server_settings.LiveFeed``), through a ccxt client of its own. No
    request is made here: a server starts while the exchange is away."""
    from adapters.exchanges.ccxt_client import open_client, sandbox_host_from
    from adapters.marketdata.ccxt_feed import CcxtFeed
    from adapters.marketdata.ccxt_history import CcxtCandleHistory

    host = (sandbox_host_from({"TRADETAPE_SANDBOX_HOST": live.sandbox_host or ""})
            if live.sandbox else None)
    client = open_client(live.exchange, sandbox=live.sandbox, sandbox_host=host)
    history = CcxtCandleHistory(client, sandbox=live.sandbox, sandbox_host=host)
    history.check_live_feed_support()
    return CcxtFeed(history, pairs, poll_seconds=live.poll_seconds, page=history.page_limit())


def open_candle_download(exchange_id: str, *, sandbox: bool, out: str, environ=None):
    """``(history, file)`` for ``tradetape candles fetch``: the exchange's candle history
    (transient failures retried with backoff) and the CSV it resumes and appends to."""
    import os

    from adapters.exchanges.ccxt_client import open_client, sandbox_host_from
    from adapters.marketdata.candle_csv_writer import CandleCsvWriter
    from adapters.marketdata.ccxt_history import CcxtCandleHistory

    host = sandbox_host_from(dict(os.environ if environ is None else environ)) if sandbox else None
    client = open_client(exchange_id, sandbox=sandbox, sandbox_host=host)
    history = CcxtCandleHistory(client, sandbox=sandbox, sandbox_host=host, attempts=5)
    return history, lambda: CandleCsvWriter(out)


def _wallet_schedule(monitor, clock, seconds: float, tick: float = 1.0):
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


def _step_log(path: str | None):
    """``TRADETAPE_STEP_LOG``: each live-loop step's figures appended to ``path``, a JSON
    line each (None: no observer). A file that cannot be opened is refused at start."""
    if not path:
        return None
    from domain.errors import DomainError

    try:
        out = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    except OSError as error:
        raise DomainError(f"TRADETAPE_STEP_LOG={path!r} cannot be written: "
                          f"{error.strerror}", code="INVALID_SETTING",
                          field="TRADETAPE_STEP_LOG") from None
    return lambda figures: out.write(figures.to_json() + "\n")


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


# --- the audit trail's keys (see adapters/security/audit_key.py) ----------------------------


def _audit_key_file(database) -> dict[str, str]:
    from adapters.security.audit_key import AUDIT_KEY_FILE_ENV, key_file_for

    path = key_file_for(database)
    return {AUDIT_KEY_FILE_ENV: str(path)} if path is not None else {}


def open_audit_key(url: str | None = None):
    """The audit key sealing the events of the store ``url`` names, or None where there is
    none (never created here: a reader that made a key would check against the wrong one)."""
    from adapters.security.audit_key import key_file_for, load_audit_key

    return load_audit_key(key_file_for(parse_database_url(url)), create=False)


def seal_check(trading: Trading, url: str | None):
    """``check(head) -> (position, problem) | None`` over the events' seals, for a rebuild
    to refuse a log with a bad seal; None when this process has no audit key."""
    from adapters.event_store.sealing import check_seals

    key = open_audit_key(url)
    if key is None:
        return None

    def check(head: int):
        report = check_seals(trading.recorder, key, head)
        return None if report is None or report.problem is None else (
            report.position, report.problem)

    return check


def take_audit_checkpoint(trading: Trading, store, database, *, sign: str | None,
                          actor: str):
    """The audit chain's head in ``store`` as a ``projections.anchoring.Checkpoint``, signed
    with the Ed25519 key file ``sign`` when given, and recorded in the log as an
    ``AuditCheckpoint`` (None when nothing is audited yet)."""
    from dataclasses import replace

    from adapters.event_store.sealing import first_sealed
    from adapters.security.audit_key import key_file_for, load_audit_key
    from application.audit_trail import CheckpointFacts, record_checkpoint
    from projections.anchoring import Checkpoint, audit_head

    head = audit_head(store) if store.table_exists("audit_log") else None
    if head is None:
        return None
    position, digest, events = head
    key = load_audit_key(key_file_for(database), create=False)
    checkpoint = Checkpoint(position, digest, events,
                            trading.clock.now().isoformat(timespec="seconds"),
                            key.fingerprint if key else None,
                            first_sealed(trading.recorder, position))
    if sign:
        from adapters.security.signing import public_key_of, sign_message

        checkpoint = replace(checkpoint, public_key=public_key_of(sign))
        checkpoint = replace(checkpoint, signature=sign_message(sign, checkpoint.message()))
    c = checkpoint
    recorded = record_checkpoint(trading, CheckpointFacts(
        position, digest, events, c.key_fingerprint, c.sealed_from, c.signature,
        c.public_key), actor)
    return replace(checkpoint, event_id=str(recorded.id))


def open_backup_store(url: str | None = None):
    """The store named by ``url`` (as :func:`open_trading`) for backups: read at one
    position, or (for a restore) its tables created as the applications create them."""
    from adapters.backup.postgres import PostgresBackupStore
    from adapters.backup.sqlite import SqliteBackupStore
    from domain.backup import BackupError

    database = parse_database_url(url)
    if database.kind == "memory":
        raise BackupError("a memory store lives and dies with one process: back up a "
                          "SQLite file or a PostgreSQL database", code="BACKUP_MEMORY_STORE")

    def create_tables() -> None:
        from adapters.backup.catalog import create_data_tables
        from adapters.security.tables import open_tables

        open_trading(database.url).close()
        tables = open_tables(database)
        try:
            create_data_tables(tables)
        finally:
            tables.close()

    prepare(database)
    if database.kind == "sqlite":
        return SqliteBackupStore(database.sqlite_path, create_tables, database.views_path)
    return PostgresBackupStore(database, create_tables)


def open_backup_schedule(url: str | None = None, environ=None):
    """Scheduled backups of the store ``url`` as ``TRADETAPE_BACKUP_DIR`` and
    ``TRADETAPE_BACKUP_EVERY`` ask (see ``application.backup_schedule``), not started; None
    when they are off."""
    import os

    from application.backup import create, tradetape_version
    from application.backup_schedule import ScheduledBackups, plan_from_environ

    plan = plan_from_environ(os.environ if environ is None else environ)
    if plan is None:
        return None
    store = open_backup_store(url)
    clock = SystemClock()
    return ScheduledBackups(plan, lambda path: create(store, path, clock=clock,
                                                      version=tradetape_version()), clock)
