"""A running server's parts, started and stopped as one: the trading log, accounts, paper
trading, the live loop, the read models followed in-process and the change feed.

Graceful stop: the live loop finishes its step (its events are saved), read models catch up
to the log's head, then stores are closed. A restart resumes every running bot from its
events (``PaperTrading.resume``), with no order placed twice.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

from application.bot_commands import BotCommands
from application.change_feed import ChangeFeed
from application.collector import collector_paused
from application.live_loop import LiveLoop
from application.operations import Operations
from application.paper_trading import PaperTrading
from application.positions import Positions
from application.projection_worker import ProjectionWorker
from application.promotion import Promotion
from application.server_settings import ServerSettings
from application.task_health import NOT_DUE, log_line, tasks_health
from application.trading import Trading
from domain.ports import Clock

log = logging.getLogger("tradetape.runtime")


class ReadModels(Protocol):
    """The projections followed in-process (see ``projections/``)."""

    def catch_up(self) -> int: ...

    def lag(self) -> dict[str, int]:
        """Events each projection still has to apply, by name."""
        ...

    def problems(self) -> list[dict[str, Any]]:
        """The projections that cannot advance: name, position, error, next retry."""
        ...

    def close(self) -> None: ...


@dataclass
class Runtime:
    settings: ServerSettings
    clock: Clock
    trading: Trading
    identity: Any
    paper: PaperTrading
    loop: LiveLoop
    read_models: ReadModels
    changes: ChangeFeed
    # Started with the server, stopped before its stores close (scheduled audit checkpoints).
    schedules: list[Any] = field(default_factory=list)
    # live accounts' reconciliation (application/reconciliation.py); None: paper only
    reconciler: Any = None
    # Live exchange accounts and their keys (``application.exchange_accounts``).
    exchange_accounts: Any = None
    # The users' risk limits (``application.risk_limits.RiskLimits``); None: no limits.
    risk: Any = None
    # Balances on a schedule and funding plans (application/wallet_monitor.py); None: off
    wallet_monitor: Any = None
    # Plans, subscriptions and Stripe (``application.billing``); None: no plan limits.
    billing: Any = None
    # More parts of an emergency exit besides the bots' (positions), and the plan's limit
    # on webhooks: wired by the composition root (``application.emergency_exit``).
    exit_participants: list[Any] = field(default_factory=list)
    webhook_limit: Any = None
    candle_library: Any = None  # the stored series users may name (CandleLibrary)
    backtests: Any = None  # backtests run for users in the background (BacktestJobs)
    candle_fetches: Any = None  # series fetched for users in the background (CandleFetches)
    rebuilds: Any = None  # projection rebuilds asked for by administrators (ProjectionRebuilds)
    started_at: datetime | None = None
    # (owner, quote a new position adds) -> None or RISK_LIMIT_REACHED; None: no limits
    risk_check: Any = None
    accepting_commands: bool = True
    # ``serve --role``: all, api (trades nothing) or engine (no views, no HTTP)
    role: str = "all"
    # engine workers on PostgreSQL: the bots this one leases (application/leases.py)
    leases: Any = None
    # PostgreSQL LISTEN: other processes' appends (adapters/event_store/notify.py)
    listener: Any = None
    # PostgreSQL: every process's background tasks, published and read for /health
    # (``application.task_board.TaskBoard``); None: this process's alone (SQLite)
    task_board: Any = None

    @cached_property
    def bots(self) -> BotCommands:
        """The bot and deal commands, with this server's market and bot limit."""
        live_market = self.settings.live_feed is not None and not self.settings.demo
        return BotCommands(self.trading, self.paper,
                           traded_pair=None if live_market else self.settings.feed_pair,
                           max_bots=lambda owner_id: self.settings.max_bots_per_user,
                           allow_live=self.settings.allow_live,
                           funding=self.wallet_monitor.funding if self.wallet_monitor
                           else None,
                           entitlements=self.billing.entitlements if self.billing else None)

    @cached_property
    def market_precision(self) -> Any:
        """Accounts' price ticks and amount steps, for the API's display forms."""
        from application.market_precision import MarketPrecision

        return MarketPrecision(self.paper.market_rules)

    @cached_property
    def promotion(self) -> Promotion:
        """Paper → live promotion with this server's thresholds."""
        return Promotion(self.bots, self.settings.promotion)

    @cached_property
    def stripe_webhooks(self) -> Any:
        from application.stripe_webhooks import StripeWebhooks

        return StripeWebhooks(self.billing)

    @cached_property
    def positions(self) -> Positions:
        """Users' own positions with OCO and trailing exits (risk limits: see bootstrap)."""
        live_market = self.settings.live_feed is not None and not self.settings.demo
        positions = Positions(self.trading, self.paper,
                              traded_pair=None if live_market else self.settings.feed_pair,
                              allow_live=self.settings.allow_live, risk_check=self.risk_check)
        if self.risk is not None:
            self.risk.add_exposure(positions.exposure_of)  # positions count beside deals
        return positions

    @cached_property
    def operations(self) -> Operations:
        return Operations(self.trading, self.paper.lock, emergency_exit=self.emergency_exit)

    @cached_property
    def emergency_exit(self):
        """Every bot (and what the other participants hold) of a user, or of everyone."""
        from application.bots_exit import BotsExit
        from application.emergency_exit import EmergencyExit
        from application.user_views import owners_of
        from domain.accounts import ExchangeAccount
        from domain.bots import Bot

        return EmergencyExit(
            [BotsExit(self.trading, self.paper), self.positions, *self.exit_participants],
            trading=self.trading,
            owners=lambda: owners_of(self.trading, Bot.Created, ExchangeAccount.Opened),
            lock=self.paper.lock)

    @cached_property
    def webhooks(self):
        from application.webhooks import Webhooks

        def bot_of(owner_id, bot_id):
            from application.user_views import Principal
            from domain.users import Role

            return self.bots.owned_bot(Principal(owner_id, Role.USER, True), bot_id)

        return Webhooks(self.trading, self.identity.data_keys, self.identity.secret_source,
                        public_url=lambda: self.identity.settings.public_url, bot_of=bot_of,
                        webhook_limit=self.webhook_limit)

    @cached_property
    def signals(self):
        """Signals received on webhooks (``POST /webhooks/{id}``)."""
        from application.signal_intake import SignalIntake

        return SignalIntake(self.webhooks, self.paper, emergency_exit=self.emergency_exit.run)

    @cached_property
    def projection_worker(self) -> ProjectionWorker:
        """The read models, followed on their own thread (woken after each live step)."""
        return ProjectionWorker(self.read_models, after=self.changes.publish_new)

    def refresh(self, _events: int = 0) -> None:
        """After commands (and at start and stop): read models, then subscribers, now."""
        self.projection_worker.catch_up()

    @property
    def trades(self) -> bool:
        return self.role in ("all", "engine")

    def start(self) -> None:
        if self.billing is not None:
            self.billing.catalogue.ensure_defaults()
        if self.trades:
            self._start_trading()
        self.loop.after_step = self.projection_worker.wake  # never inside a trading step
        self.loop.start()  # the engine trades while the views catch up, not after
        self.refresh()  # views current before the first answer (a crash may leave a lag)
        self.projection_worker.start()
        if self.listener is not None:
            self.listener.start()
        for schedule in self.schedules:
            schedule.start()
        if self.task_board is not None:
            self.task_board.start()
        if self.leases is not None:  # started and stepping: the other workers may give it
            self.leases.started()  # bots now
        self.started_at = self.clock.now()

    def _start_trading(self) -> None:
        if self.leases is not None:  # the bots this worker leases, not every bot
            if self.risk is not None:
                self.risk.resume()
            self.leases.start()
        else:
            # Every bot's engine, deal and orders, built to live on: no collection walks
            # them meanwhile nor later, as an engine worker's first take (leases.start).
            with collector_paused(freeze_survivors=True):
                self.paper.resume()
        self.positions.resume()
        if self.reconciler is not None:
            self._reconcile_at_start()
        if self.wallet_monitor is not None:
            self._observe_wallets_at_start()

    def _reconcile_at_start(self) -> None:
        """The live accounts reconciled before the first step, as a round of the
        reconciliation's schedule when there is one: an error outside the known codes
        never stops the start (it used to); the task shows amber on ``/health`` with the
        error's kind and code, and the schedule's rounds try again when it is next due."""
        schedule = next((s for s in self.schedules if s.name == "reconciliation"), None)
        if schedule is not None:
            schedule.run_once()
            return
        try:
            self.reconciler.run(self.clock.now())
        except Exception as error:  # (no schedule: the log says it)
            log.warning("reconciliation failed at start: %s", log_line(error))

    def _observe_wallets_at_start(self) -> None:
        """The balances as they stand at start, in the views before the first answer
        (its schedule's first round, on its own thread, then waits a period): a round of
        the wallet monitor's schedule, counted in its ``rounds`` on ``/health`` and shown
        amber when it fails (never keeping the server from starting: the schedule tries
        again). On standby (another process observes) it is no round."""
        monitor = self.wallet_monitor
        schedule = next((s for s in self.schedules if s.name == "wallet-monitor"), None)

        def start_round() -> object:
            mine = monitor.my_turn()
            if schedule is not None:
                schedule.health.on_standby(not mine)
            return (monitor.observe_all(self.clock.now(), load_together=True) if mine
                    else NOT_DUE)

        if schedule is not None:
            schedule.run_once(start_round)
            return
        try:
            start_round()
        except Exception as error:  # (no schedule: the log says it)
            log.warning("wallet monitor failed at start: %s", log_line(error))

    def stop(self) -> None:
        self.accepting_commands = False
        self.loop.stop()
        ahead = getattr(self.paper, "appends_ahead", None)
        if ahead is not None:  # (a candle settles what it sent before it ends: idle now)
            ahead.close()
        # what runs beside the loop (reconciliation, the billing sweep) ends with it: its
        # round under way finishes (asked of an exchange or Stripe, saved or not at all)
        for schedule in self.schedules:
            schedule.stop()
            lock = getattr(schedule, "lock", None)  # its turn in the deployment: another
            if lock is not None:  # process takes it at once
                lock.release()
        if self.task_board is not None:  # this process's rows go with it
            self.task_board.stop()
        if self.listener is not None:
            self.listener.stop()
        if self.leases is not None:  # let go at once: the other workers take over now
            self.leases.stop()
        if self.risk is not None and self.risk.holds is not None:
            self.risk.holds.close()  # (its connection; a hold under way ends with it)
        self.projection_worker.stop()
        if self.backtests is not None:
            self.backtests.close()  # a run under way stops at its next step, recorded so
        for background in (self.candle_fetches, self.rebuilds):
            if background is not None:
                background.close()
        self.refresh()
        self.read_models.close()
        self.identity.close()
        self.trading.close()

    def health(self) -> dict[str, dict[str, Any]]:
        """Each part green, amber or red, with how long it took to answer."""
        parts = {"event_store": _timed(self._store_health),
                 "projections": _timed(self._projection_health),
                 "engine_loop": _timed(self._loop_health)}
        if self.reconciler is not None and self.reconciler.accounts:
            parts["exchanges"] = _timed(self.reconciler.health)
        if self.wallet_monitor is not None:
            parts["wallet"] = _timed(self.wallet_monitor.health)
        if self.billing is not None and (self.billing.refused_renewals
                                         or self.billing.waiting_renewals):
            parts["billing"] = _timed(self._billing_health)
        if self.leases is not None:
            parts["leases"] = _timed(self._lease_health)
        if self.schedules or self.task_board is not None:  # reconciliation, billing
            parts["background"] = _timed(self._background_health)  # sweep, wallet, audit
        parts["process"] = _timed(self._process_health)
        return parts

    def _background_health(self) -> tuple[str, dict]:
        """This process's tasks (``tasks``) and, on PostgreSQL, every live process's
        (``deployment``: the engines' reconciliation and sweep on the api's /health)."""
        status, detail = tasks_health(self.schedules)
        if self.task_board is not None:
            elsewhere, detail["deployment"] = self.task_board.deployment()
            status = "amber" if "amber" in (status, elsewhere) else status
        return status, detail

    def _process_health(self) -> tuple[str, dict]:
        """Which role this process plays and at which niceness it runs (``serve --nice N``
        or ``TRADETAPE_NICE``; ``niceness_setting`` None: inherited, left as it was) and, on
        PostgreSQL, the ``name`` its rows carry in the deployment's list of tasks."""
        pid = os.getpid()  # on Linux the main thread's id: niceness is per thread
        detail = {"role": self.role, "pid": pid,
                  "niceness": os.getpriority(os.PRIO_PROCESS, pid),
                  "niceness_setting": self.settings.nice}
        if self.task_board is not None:  # the name its rows carry in ``background.deployment``
            detail["name"] = self.task_board.process.name
        return "green", detail

    def _billing_health(self) -> tuple[str, dict]:
        """Amber while users whose wallet held the price expired at the last sweep because
        Stripe refused to be told the wallet pays (WALLET_RENEWAL_REFUSED), or wait past
        due for Stripe to answer (an outage): by user, why."""
        refused = dict(self.billing.refused_renewals)
        waiting = dict(self.billing.waiting_renewals)
        return ("amber" if refused or waiting else "green"), {
            "wallet_renewals_refused": refused, "wallet_renewals_waiting": waiting}

    def _lease_health(self) -> tuple[str, dict]:
        """This engine worker: its name, how many bots it leases, its last tick's error."""
        leases = self.leases
        detail = {"worker": leases.worker, "bots": len(leases.held), "ticks": leases.ticks,
                  "last_error": leases.last_error,  # (and why it trades nothing: another
                  "stood_down": leases.stood_down}  # protocol's process, PROTOCOL_*)
        return ("amber" if leases.last_error or leases.stood_down else "green"), detail

    def _store_health(self) -> tuple[str, dict]:
        head = self.trading.recorder.max_notification_id() or 0
        return "green", {"head": head}

    def _projection_health(self) -> tuple[str, dict]:
        """Red when a projection cannot advance (``stuck`` names it, its position and its
        error), else by the largest lag."""
        lag = self.read_models.lag()  # against the log's head as it is now
        stuck = self.read_models.problems()
        worst = max(lag.values(), default=0)
        worker = self.projection_worker
        status = ("red" if stuck or worst >= 100_000 else "amber" if worst >= 1000
                  else "green")
        if self.loop.running and (not worker.running or worker.last_error):
            status = "red"  # nothing brings them forward any more
        return status, {"lag": lag, "stuck": stuck, "worker": {
            "running": worker.running, "rounds": worker.rounds,
            "last_error": worker.last_error}}

    def _loop_health(self) -> tuple[str, dict]:
        h = self.loop.health
        detail = {"running": self.loop.running, "steps": h.steps, "candles": h.candles,
                  "events": h.events, "last_error": h.last_error,
                  "last_step_at": h.last_step_at.isoformat() if h.last_step_at else None}
        markets = [feed.status() for feed in self.loop.feeds if hasattr(feed, "status")]
        if markets:  # a live feed: its last candle, how far behind the exchange, its error
            detail["market"] = markets[0] if len(markets) == 1 else markets
        if not self.loop.running or h.last_error:
            return "red", detail
        if h.last_step_at is None or any(_market_late(market) for market in markets):
            return "amber", detail
        silent = (self.clock.now() - h.last_step_at).total_seconds()
        return ("green" if silent < 10 else "amber"), detail


def _market_late(market: dict[str, Any]) -> bool:
    """A live feed that cannot reach its exchange, or is more than 3 minutes behind it."""
    lag = market.get("lag_seconds")
    return bool(market.get("last_error")) or (lag is not None and lag > 180)


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        status, detail = check()
    except Exception as error:  # a failing check is a red light, not a crash
        status, detail = "red", {"error": f"{type(error).__name__}: {error}"}
    detail["status"] = status
    detail["response_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return detail
