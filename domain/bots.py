"""The Bot aggregate: a DCA bot's identity, configuration and lifecycle."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.dca import DcaConfig
from domain.errors import DomainError, InvalidTransitionError
from domain.recording import Cause, TradetapeAggregate, ValueEnum
from domain.text import checked_text


class BotMode(ValueEnum):
    PAPER = "paper"
    LIVE = "live"


class LifecycleStage(ValueEnum):
    PAPER_TRAINING = "paper_training"
    LIVE_TRADING = "live_trading"


class BotStatus(ValueEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


_ALLOWED = {
    "start": {BotStatus.CREATED, BotStatus.PAUSED},
    "pause": {BotStatus.RUNNING},
    "stop": {BotStatus.CREATED, BotStatus.RUNNING, BotStatus.PAUSED, BotStatus.ERROR},
    "fail": {BotStatus.CREATED, BotStatus.RUNNING, BotStatus.PAUSED},
    "reset_error": {BotStatus.ERROR},
    "edit": {BotStatus.CREATED, BotStatus.RUNNING, BotStatus.PAUSED, BotStatus.ERROR},
}


# What an open deal's orders were placed with: changing any of them while a deal is open
# would leave that deal's ladder and the configuration telling different stories.
LADDER_FIELDS = ("pair", "base_order_quote", "safety_order_quote", "max_safety_orders",
                 "price_deviation_pct", "safety_volume_scale", "safety_step_scale")


class Bot(TradetapeAggregate):
    name: str
    owner_id: str
    exchange_account_id: str
    mode: BotMode
    stage: LifecycleStage
    status: BotStatus
    config: DcaConfig
    config_version: int
    error_reason: str | None
    status_before_error: BotStatus | None
    paper_started_at: datetime | None
    promoted_at: datetime | None
    open_deal_id: UUID | None
    deals_opened: int
    deals_finished: int  # closed with a sale or cancelled: the read models tell which
    leaderboard_opt_in: bool
    risk_blocked: str | None  # the risk limit that kept the last deal from opening
    risk_paused_until: datetime | None  # paused by the daily loss limit until then
    archived: bool = False  # deleted by its owner: history kept, hidden from lists
    # A deal another process asked the engine trading the bot to sell at market, why, who
    close_requested: UUID | None = None
    close_reason: str | None = None
    close_actor: str | None = None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Created(TradetapeAggregate.Created, Event):
        # v1 had no mode: every bot then traded on paper.
        class_version = 2
        name: str
        owner_id: str
        exchange_account_id: str
        mode: BotMode
        config: DcaConfig

        def apply(self, bot: Bot) -> None:
            bot.name, bot.owner_id = self.name, self.owner_id
            bot.exchange_account_id, bot.mode, bot.config = (
                self.exchange_account_id,
                self.mode,
                self.config,
            )
            bot.stage = (
                LifecycleStage.LIVE_TRADING if self.mode is BotMode.LIVE
                else LifecycleStage.PAPER_TRAINING
            )
            bot.status, bot.config_version = BotStatus.CREATED, 1
            bot.error_reason = bot.status_before_error = None
            bot.paper_started_at = bot.promoted_at = bot.open_deal_id = None
            bot.deals_opened = bot.deals_finished = 0
            bot.leaderboard_opt_in = False
            bot.risk_blocked = bot.risk_paused_until = None

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["mode"] = BotMode.PAPER

    class Started(Event):
        def apply(self, bot: Bot) -> None:
            bot.status, bot.risk_paused_until = BotStatus.RUNNING, None
            if bot.mode is BotMode.PAPER and bot.paper_started_at is None:
                bot.paper_started_at = self.timestamp

    class Paused(Event):
        def apply(self, bot: Bot) -> None:
            # paused by its owner: a new day does not resume it
            bot.status, bot.risk_paused_until = BotStatus.PAUSED, None

    class Stopped(Event):
        def apply(self, bot: Bot) -> None:
            bot.status = BotStatus.STOPPED

    class ErrorRaised(Event):
        reason: str

        def apply(self, bot: Bot) -> None:
            bot.status_before_error, bot.status = bot.status, BotStatus.ERROR
            bot.error_reason = self.reason

    class ErrorReset(Event):
        def apply(self, bot: Bot) -> None:
            # A bot that failed while running comes back paused: a person restarts it.
            before = bot.status_before_error
            bot.status = BotStatus.PAUSED if before is BotStatus.RUNNING else before
            bot.error_reason = bot.status_before_error = None

    class ConfigEdited(Event):
        config: DcaConfig

        def apply(self, bot: Bot) -> None:
            bot.config, bot.config_version = self.config, bot.config_version + 1

    class PromotedToLive(Event):
        """``exchange_account_id``: the live account the bot trades on from now on (v1 had
        none: the bot stayed on its account)."""

        class_version = 2
        exchange_account_id: str | None

        def apply(self, bot: Bot) -> None:
            bot.mode, bot.stage, bot.promoted_at = (
                BotMode.LIVE,
                LifecycleStage.LIVE_TRADING,
                self.timestamp,
            )
            if self.exchange_account_id is not None:
                bot.exchange_account_id = self.exchange_account_id

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["exchange_account_id"] = None

    class RiskLimitReached(Event):
        """A deal was not opened: its base order would have passed the owner's risk
        ``limit`` (``message``: the figures). Recorded once while the same limit holds."""

        limit: str
        message: str

        def apply(self, bot: Bot) -> None:
            bot.risk_blocked = self.limit

    class RiskPaused(Event):
        """Paused by a risk rule (the daily loss limit) until ``until``; resumed then."""

        reason: str
        until: datetime

        def apply(self, bot: Bot) -> None:
            bot.status, bot.risk_paused_until = BotStatus.PAUSED, self.until

    class RiskResumed(Event):
        reason: str

        def apply(self, bot: Bot) -> None:
            bot.status, bot.risk_paused_until = BotStatus.RUNNING, None

    class DealStarted(Event):
        deal_id: UUID

        def apply(self, bot: Bot) -> None:
            bot.open_deal_id, bot.deals_opened = self.deal_id, bot.deals_opened + 1
            bot.risk_blocked = None

    class DealFinished(Event):
        deal_id: UUID

        def apply(self, bot: Bot) -> None:
            bot.open_deal_id, bot.deals_finished = None, bot.deals_finished + 1

    class DealCloseRequested(Event):
        """Asked in a process that does not trade the bot (``serve --role api``, or a
        server whose engine worker does not hold it): the engine worker that holds the
        bot's lease sells the deal at market."""

        deal_id: UUID
        reason: str

        def apply(self, bot: Bot) -> None:
            bot.close_requested, bot.close_reason = self.deal_id, self.reason
            bot.close_actor = self.actor

    class Renamed(Event):
        name: str

        def apply(self, bot: Bot) -> None:
            bot.name = self.name

    class Archived(Event):
        """Deleted by its owner: stopped for good, kept with its history, listed nowhere."""

        def apply(self, bot: Bot) -> None:
            bot.archived = True

    class LeaderboardOptedIn(Event):
        """The owner lets the public leaderboard show this bot's results."""

        def apply(self, bot: Bot) -> None:
            bot.leaderboard_opt_in = True

    class LeaderboardOptedOut(Event):
        def apply(self, bot: Bot) -> None:
            bot.leaderboard_opt_in = False

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        bot_id: UUID,
        cause: Cause,
        *,
        name: str,
        owner_id: str,
        exchange_account_id: str,
        config: DcaConfig,
        mode: BotMode = BotMode.PAPER,
    ) -> Bot:
        name = checked_text(name, "name").strip()
        if not 1 <= len(name) <= 64:
            raise DomainError("must be 1 to 64 characters", code="INVALID_BOT_NAME", field="name")
        return cls._start(
            cls.Created,
            bot_id,
            cause,
            name=name,
            owner_id=owner_id,
            exchange_account_id=exchange_account_id,
            mode=BotMode(mode),
            config=config,
        )

    def _check(self, action: str) -> None:
        if self.status not in _ALLOWED[action]:
            raise InvalidTransitionError(
                f"cannot {action.replace('_', ' ')} a bot that is {self.status}",
                code=f"BOT_{str(self.status).upper()}",
            )

    def start(self, cause: Cause) -> None:
        self._check("start")
        self._record(self.Started, cause)

    def pause(self, cause: Cause) -> None:
        self._check("pause")
        self._record(self.Paused, cause)

    def stop(self, cause: Cause) -> None:
        self._check("stop")
        self._record(self.Stopped, cause)

    def fail(self, cause: Cause, reason: str) -> None:
        self._check("fail")
        self._record(self.ErrorRaised, cause, reason=reason)

    def reset_error(self, cause: Cause) -> None:
        self._check("reset_error")
        self._record(self.ErrorReset, cause)

    def edit_config(self, cause: Cause, config: DcaConfig) -> None:
        self._check("edit")
        if self.open_deal_id is not None:
            changed = [f for f in LADDER_FIELDS if getattr(config, f) != getattr(self.config, f)]
            if changed:
                raise DomainError(
                    f"cannot change {', '.join(changed)} while a deal is open: its orders "
                    "were placed with them (close the deal, or change them after it ends)",
                    code="DEAL_OPEN",
                    field=changed[0],
                )
        if config != self.config:
            self._record(self.ConfigEdited, cause, config=config)

    def rename(self, cause: Cause, name: str) -> None:
        self._not_archived()
        name = checked_text(name, "name").strip()
        if not 1 <= len(name) <= 64:
            raise DomainError("must be 1 to 64 characters", code="INVALID_BOT_NAME", field="name")
        if name != self.name:
            self._record(self.Renamed, cause, name=name)

    def archive(self, cause: Cause) -> None:
        """Only a stopped bot without an open deal (stop it first, closing its deal)."""
        self._not_archived()
        if self.status is not BotStatus.STOPPED:
            raise InvalidTransitionError(f"cannot delete a bot that is {self.status}: stop "
                                         "it first", code=f"BOT_{str(self.status).upper()}")
        if self.open_deal_id is not None:
            raise DomainError("the bot still has an open deal: close it first",
                              code="DEAL_OPEN")
        self._record(self.Archived, cause)

    def _not_archived(self) -> None:
        if self.archived:
            raise InvalidTransitionError("the bot was deleted", code="BOT_DELETED")

    def promote_to_live(self, cause: Cause, exchange_account_id: str | None = None) -> None:
        if self.stage is LifecycleStage.LIVE_TRADING:
            raise InvalidTransitionError("the bot already trades live", code="BOT_ALREADY_LIVE")
        if self.status is BotStatus.STOPPED:
            raise InvalidTransitionError("cannot promote a stopped bot", code="BOT_STOPPED")
        self._record(self.PromotedToLive, cause, exchange_account_id=exchange_account_id)

    def refuse_deal(self, cause: Cause, limit: str, message: str) -> None:
        """A risk limit kept a deal from opening: said once while the same limit holds."""
        if getattr(self, "risk_blocked", None) != limit:
            self._record(self.RiskLimitReached, cause, limit=limit, message=message)

    def risk_pause(self, cause: Cause, reason: str, until: datetime) -> None:
        if self.status is BotStatus.RUNNING:
            self._record(self.RiskPaused, cause, reason=reason, until=until)

    def risk_resume(self, cause: Cause, reason: str) -> None:
        """Only a bot the risk rule paused, and still paused (not stopped, not started
        again by its owner)."""
        if (self.status is BotStatus.PAUSED
                and getattr(self, "risk_paused_until", None) is not None):
            self._record(self.RiskResumed, cause, reason=reason)

    def start_deal(self, cause: Cause, deal_id: UUID) -> None:
        if self.status is not BotStatus.RUNNING:
            raise InvalidTransitionError(
                f"a bot that is {self.status} opens no deals",
                code=f"BOT_{str(self.status).upper()}",
            )
        if self.open_deal_id is not None:
            raise InvalidTransitionError("the bot already has an open deal", code="DEAL_OPEN")
        self._record(self.DealStarted, cause, deal_id=deal_id)

    def request_close(self, cause: Cause, deal_id: UUID, reason: str) -> None:
        if self.open_deal_id != deal_id:
            raise InvalidTransitionError(
                f"deal {deal_id} is not this bot's open deal", code="DEAL_NOT_OPEN"
            )
        self._record(self.DealCloseRequested, cause, deal_id=deal_id, reason=reason)

    @property
    def close_pending(self) -> bool:
        """A close asked for its open deal, not done yet."""
        return self.close_requested is not None and self.close_requested == self.open_deal_id

    def finish_deal(self, cause: Cause, deal_id: UUID) -> None:
        if self.open_deal_id != deal_id:
            raise InvalidTransitionError(
                f"deal {deal_id} is not this bot's open deal", code="DEAL_NOT_OPEN"
            )
        self._record(self.DealFinished, cause, deal_id=deal_id)

    def set_leaderboard_opt_in(self, cause: Cause, opted_in: bool) -> None:
        """Only the owner decides; asking for the state the bot is in records nothing."""
        if cause.actor != self.owner_id:
            raise DomainError("only the bot's owner can change its leaderboard listing",
                              code="NOT_OWNER")
        if opted_in != self.leaderboard_opt_in:
            self._record(self.LeaderboardOptedIn if opted_in else self.LeaderboardOptedOut,
                         cause)
