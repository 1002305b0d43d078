"""The composition root: the one place that chooses adapters (clock, ids, store) and wires
them into the applications. Commands and servers start here; tests may inject their own."""

from __future__ import annotations

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
    elif database.kind == "postgres":
        env["PERSISTENCE_MODULE"] = POSTGRES_EVENT_STORE
    return Trading(clock=clock or SystemClock(), ids=ids or RandomIds(), env=env)


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
    GIL)."""
    import importlib
    import os
    from concurrent.futures import ThreadPoolExecutor

    from adapters.marketdata.candle_file import read_candle_file

    # Recorded in the run's events: absolute, so `replay --check` finds it from anywhere.
    path = os.path.abspath(candles_path)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candles") as loader:
        reading = loader.submit(read_candle_file, path)
        from adapters.marketdata.csv_candles import parse_candle_file

        loading = loader.submit(lambda read=reading: parse_candle_file(read.result()))
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
    one is opened and ``Identity.close()`` closes it. Unless given: the server secret from
    ``TRADETAPE_SECRET_KEY`` (else generated once and kept in the database), mail through
    ``TRADETAPE_SMTP_URL`` (else the console), bcrypt cost ``TRADETAPE_BCRYPT_ROUNDS``
    (else 12), settings from ``TRADETAPE_*`` (see ``application.identity_settings``)."""
    import os

    from adapters.mailer import mailer_from_environ
    from adapters.security.email_index import HmacEmailIndex
    from adapters.security.keys import AesGcmDataKeyStore
    from adapters.security.passwords import DEFAULT_ROUNDS, BcryptPasswordHasher
    from adapters.security.server_secret import SECRET_KEY_ENV, derive_key, load_server_secret
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
        secret = load_server_secret(tables, environ)
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

    return Identity(
        app, hasher=hasher, keys=AesGcmDataKeyStore(tables),
        emails=HmacEmailIndex(tables, derive_key(secret, "email-index")),
        signer=HmacTokenSigner(derive_key(secret, "access-tokens")),
        secrets=secrets or RandomSecrets(), mailer=mailer or mailer_from_environ(),
        settings=settings, on_close=close,
    )


class _InProcessReadModels:
    """Every projection followed inside the server process (see ``projections/``).

    Read models are disposable: views whose tables an older version made (another shape)
    are rebuilt from the events at start, rather than keeping the server down until an
    operator runs ``tradetape projections rebuild``."""

    def __init__(self, trading: Trading, database):
        import sys

        from projections.rebuild import rebuild
        from projections.registry import PROJECTIONS
        from projections.runner import Projector
        from projections.store import open_view_store

        self.store = open_view_store(database)
        stored = self.store.tracking()
        changed = [cls for cls in PROJECTIONS.values()
                   if cls.name in stored and stored[cls.name].schema_hash != cls.schema()]
        if changed:
            names = ", ".join(cls.name for cls in changed)
            sys.stderr.write(f"read models made by another version, rebuilding: {names}\n")
            rebuild(trading, self.store, changed)
        self.projector = Projector(trading, self.store, [cls() for cls in PROJECTIONS.values()])
        self.projector.start()

    def catch_up(self) -> int:
        return self.projector.catch_up()

    def lag(self) -> dict[str, int]:
        head = self.projector.head()
        return {name: head - position for name, position in self.projector.positions().items()}

    def close(self) -> None:
        self.store.close()


def open_runtime(settings):
    """Everything ``tradetape serve`` runs, wired: the wall clock, random ids, the paper
    exchange, a replayed market feed, identity, read models and the live loop."""
    from datetime import UTC, datetime

    from adapters.exchanges.paper import PaperExchange
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.replay_feed import ReplayFeed
    from adapters.marketdata.shipped import shipped_series
    from application.change_feed import ChangeFeed
    from application.live_loop import LiveLoop
    from application.paper_trading import PaperTrading
    from application.runtime import Runtime

    database = parse_database_url(settings.database_url)
    prepare(database)
    clock, ids = SystemClock(), RandomIds()
    trading = open_trading(settings.database_url, clock=clock, ids=ids)
    identity = open_identity(settings.database_url, trading=trading, clock=clock, ids=ids)

    def venue(pair, quote, base):
        return PaperExchange(pair, quote_balance=quote, base_balance=base)

    paper = PaperTrading(trading, ids, venue)
    # A fixed epoch: where the replayed market stands follows from the clock alone, so a
    # restarted server continues the same market.
    feed = ReplayFeed(load_candles(shipped_series(settings.feed)), settings.feed_pair,
                      speed=settings.speed, epoch=datetime(2026, 1, 1, tzinfo=UTC))
    loop = LiveLoop(clock, [feed], paper)
    return Runtime(settings=settings, clock=clock, trading=trading, identity=identity,
                   paper=paper, loop=loop, read_models=_InProcessReadModels(trading, database),
                   changes=ChangeFeed(trading))


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
        return SqliteBackupStore(database.sqlite_path, create_tables)
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
