"""The composition root: the one place that chooses adapters (clock, ids, store) and wires
them into the applications. Commands and servers start here; tests may inject their own.

``open_runtime`` wires everything ``tradetape serve`` runs; each part it wires is chosen in
a module of its own, all of them the composition root (and re-exported here, where commands
and tests import them):

- ``bootstrap_stores``: the event store a database URL gets (``open_trading``);
- ``bootstrap_backtests``: backtests and stored runs made again;
- ``bootstrap_identity``: users, keys, exchange accounts;
- ``bootstrap_read_models``: the projections, in this process or another;
- ``bootstrap_engine``: leases and exposure holds on a shared database;
- ``bootstrap_exchanges``: live venues, market rules, feeds through ccxt;
- ``bootstrap_candles``: the candle library and downloads for users;
- ``bootstrap_schedules``: the background tasks beside the live loop;
- ``bootstrap_billing``, ``bootstrap_audit``, ``bootstrap_backups``."""

from __future__ import annotations

from adapters.clock import RandomIds, SystemClock
from application.appends_ahead import AppendsAhead
from application.bootstrap_audit import open_audit_key, seal_check, take_audit_checkpoint
from application.bootstrap_backtests import (
    ENGINE_MODULES,
    backtest,
    compare,
    load_backtest_candles,
    open_backtest_jobs,
    rerun_backtest,
    rerun_backtest_result,
    run_backtest_on,
)
from application.bootstrap_backups import open_backup_schedule, open_backup_store
from application.bootstrap_billing import open_billing
from application.bootstrap_candles import (
    SHIPPED_FIRST,
    candle_fetch_directory,
    open_candle_fetches,
    open_candle_library,
)
from application.bootstrap_engine import _event_listener, open_engine_leases, open_exposure_holds
from application.bootstrap_exchanges import (
    open_candle_download,
    open_live_feed,
    open_live_venues,
    open_market_rules,
)
from application.bootstrap_identity import (
    open_exchange_accounts,
    open_identity,
    rotate_master_key,
)
from application.bootstrap_read_models import (
    _InProcessReadModels,
    _SharedReadModels,
    open_projection_rebuilds,
    open_projection_worker,
)
from application.bootstrap_schedules import (
    _beside_the_loop,
    _checkpoint_schedules,
    _clients_schedule,
    _task_rows,
    _wallet_schedule,
    open_task_board,
)
from application.bootstrap_stores import (
    MEMORY_EVENT_STORE,
    POSTGRES_EVENT_STORE,
    SQLITE_EVENT_STORE,
    open_trading,
)
from application.settings import parse_database_url, prepare

# What commands, scripts and tests import from here (each defined in its part above).
__all__ = [
    "ENGINE_MODULES", "MEMORY_EVENT_STORE", "POSTGRES_EVENT_STORE", "SHIPPED_FIRST",
    "SQLITE_EVENT_STORE", "_InProcessReadModels", "_SharedReadModels", "_beside_the_loop",
    "_clients_schedule", "backtest", "candle_fetch_directory", "compare",
    "load_backtest_candles", "open_audit_key", "open_backtest_jobs", "open_backup_schedule",
    "open_backup_store", "open_billing", "open_candle_download", "open_candle_fetches",
    "open_candle_library", "open_engine_leases", "open_exchange_accounts",
    "open_exposure_holds", "open_identity", "open_live_feed", "open_live_venues",
    "open_market_rules", "open_projection_rebuilds", "open_projection_worker",
    "open_runtime", "open_task_board", "open_trading", "rerun_backtest",
    "rerun_backtest_result", "rotate_master_key", "run_backtest_on", "seal_check",
    "take_audit_checkpoint",
]



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
                   *([_wallet_schedule(monitor, settings.wallet_seconds),
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
        if settings.appends_ahead:  # (PostgreSQL: the appending thread has connections)
            paper.appends_ahead = AppendsAhead(settings.appends_ahead)
    elif shared:  # (an engine's leases wire it)
        open_exposure_holds(database, trading, risk)
    if shared:
        runtime.listener = _event_listener(database, trading, runtime)
        runtime.task_board = open_task_board(task_rows, runtime, role)
    return runtime


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
