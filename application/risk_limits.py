"""Risk limits per user: setting them, the gate every buy asks first, and the daily loss
limit that pauses a user's bots until the next 00:00 UTC.

The gate (:meth:`RiskLimits.check`) decides from the user's limits (their UserRisk events)
and what they have open now, as the runners hold it in memory (``exposure`` sources: the
paper/live runner's engines, and positions when they are wired in). The engine asks it
through its injected ``risk`` port, the same in paper and live; backtests pass none.

The daily loss limit is kept by the runner: each deal that closes is counted into its UTC
day (market time, so a replayed market pauses and resumes the same way), and when the
day's realized loss reaches the limit every bot of the user is paused (``Bot.RiskPaused``,
with the reason); the first step of the next day resumes them (``Bot.RiskResumed``).

Wiring (``bootstrap.open_runtime``): ``risk = RiskLimits(trading)``, then
``PaperTrading(..., risk=risk)`` (it adds its engines' exposure and shares its lock).
Positions add theirs with ``risk.add_exposure(positions.exposure_of)`` (owner id ->
``Exposure(0, committed quote)``) and take ``risk.for_positions()`` as their ``risk_check``.
On PostgreSQL, ``bootstrap.open_exposure_holds`` makes a user's check and write one step
across processes (``application/exposure_holds.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from application.exposure_holds import ExposureHolds, PositionGate
from application.replay import read_log
from application.stopped_deals import StoppedDeals
from application.trading import Trading
from domain.bots import Bot, BotStatus
from domain.dca import ladder
from domain.deals import Deal, DealStatus
from domain.errors import NotFoundError
from domain.money import ZERO
from domain.numbers import Bounds, parse_number, parse_whole
from domain.recording import Cause, topic_of
from domain.risk import Exposure, Limits, RiskLimitError, UserRisk, day_of, refusal, risk_id
from domain.rosters import BotRoster, roster_id

log = logging.getLogger("tradetape.risk")
ExposureSource = Callable[[str], Exposure]  # owner id -> what they have open now
BotSource = Callable[[UUID], Bot | None]  # a bot as the runner holds it (or loaded);
# None: not the runner's to write (another engine worker trades it)
_QUOTE = Bounds(Decimal("1e-12"), Decimal("1e15"), sign_code="NOT_POSITIVE")
_DEALS = Bounds(Decimal(0), Decimal(100_000), sign_code="NEGATIVE")
# A halt begun or lifted, by any writer: its owner is watched for the lift (``forget``)
HALT_TOPICS = frozenset({topic_of(UserRisk.DailyLossReached),
                         topic_of(UserRisk.DailyLossLifted)})
_AT_ONCE = datetime.min.replace(tzinfo=UTC)  # due at any step
# A bot's pause by the daily loss limit and its end, as the log reads them (pause first)
_PAUSE_TOPICS = (topic_of(Bot.RiskPaused), topic_of(Bot.RiskResumed))


@dataclass(frozen=True)
class RiskView:
    """A user's limits and where they stand now."""

    limits: Limits
    exposure: Exposure
    day: str | None
    day_realized_pnl: Decimal
    paused_until: datetime | None


def parse_limits(values: dict[str, object]) -> Limits:
    """Limits as typed by people (None: no limit); the first problem raises its code,
    naming the field (``maxOpenDeals`` ...)."""
    def quote(name: str) -> Decimal | None:
        raw = values.get(name)
        return None if raw is None else parse_number(raw, name, _QUOTE)

    deals = values.get("maxOpenDeals")
    return Limits(None if deals is None else parse_whole(deals, "maxOpenDeals", _DEALS),
                  quote("maxPositionQuote"), quote("maxExposureQuote"),
                  quote("maxDailyLossQuote"))


class RiskLimits:
    """``lock``: the runner's (commands and steps change UserRisk under it)."""

    def __init__(self, trading: Trading, lock: threading.RLock | None = None):
        self.trading = trading
        self.lock = lock or threading.RLock()
        self._sources: list[ExposureSource] = []
        self._halted: dict[str, datetime] = {}  # owners paused by the daily loss limit
        # Ids of UserRisks the log does not hold (owners who never set a limit): asked
        # before every buy, a query each would cost a step per deal it opens. Forgotten
        # when a limit is set here, or when the runner sees one set elsewhere (``forget``).
        self._absent: set[UUID] = set()
        self._looked_up: set[str] = set()  # owners ``prefetch`` asked the store about
        self._keys: dict[str, UUID] = {}  # UserRisk ids by owner
        # owner -> their paused bots the last lift left to the engine workers trading them
        self._elsewhere: dict[str, set[UUID]] = {}
        # On an engine worker (``LeasedPaperTrading``): whether it holds all of an owner's
        # bots, so that its figures are the whole of theirs (None: one runner, it does).
        self.judge: Callable[[str], bool] | None = None
        # Owners whose count limits a buy here was judged on: their appends are fenced
        # with every lease counted (``LeasedPaperTrading._append``)
        self.judged: set[str] = set()
        # On a process that shares the database with others (an engine worker, an api
        # process): owner -> the bots of theirs it does not trade. A position's check counts
        # their deals as the log has them (``check``), not as this process holds none.
        self.untraded: Callable[[str, list[UUID]], list[UUID]] | None = None
        # bot -> owner of the bots this code cannot read (``running_bots.load_readable``):
        # what they hold is unknown, so their owners' limits that count it open nothing
        self.unreadable: dict[UUID, str] = {}
        # On a process that shares the database: a user's exposure stamps (the check and
        # the write of a buy one step across processes: application/exposure_holds.py)
        self.holds: ExposureHolds | None = None
        self.stopped = StoppedDeals(trading)  # (read for positions' checks only)

    def add_exposure(self, source: ExposureSource) -> None:
        """Another holder of open deals or positions (the runner, positions)."""
        self._sources.append(source)

    # --- limits ---------------------------------------------------------------------------

    def _key(self, owner_id: str) -> UUID:
        """``risk_id``, kept: a uuid5 (a SHA-1) was computed before every buy."""
        key = self._keys.get(owner_id)
        if key is None:
            key = self._keys[owner_id] = risk_id(owner_id)
        return key

    def risk_of(self, owner_id: str) -> UserRisk | None:
        key = self._key(owner_id)
        if key in self._absent:
            return None
        try:
            return self.trading.load(key, UserRisk)
        except NotFoundError:
            self._absent.add(key)
            return None

    def prefetch(self, owner_ids: Iterable[str]) -> None:
        """Ask the store in one query which of ``owner_ids`` (not asked before) set no
        limit, so that their buys ask it nothing. WHY: the first close, where every bot
        opens a deal, asked once per owner, one round trip each (1,000 at 10,000 bots),
        all inside the step. Those found are loaded at each check, as before."""
        owners = [o for o in dict.fromkeys(owner_ids) if o not in self._looked_up]
        if not owners:
            return
        self._looked_up.update(owners)
        keys = [self._key(o) for o in owners]
        found = self.trading.load_many([k for k in keys if k not in self._absent], UserRisk)
        self._absent.update(k for k in keys if k not in found)

    def forget(self, risk: UUID, topic: str | None = None) -> None:
        """The UserRisk ``risk`` was written (maybe by another process): load it again.
        ``topic``: what was written; a halt begun or lifted (maybe by another engine
        worker) makes its owner watched here too (``watch``)."""
        self._absent.discard(risk)
        if topic in HALT_TOPICS:
            self.watch(risk)

    def watch(self, risk: UUID) -> None:
        """Watch the owner of ``risk`` for the lift (``due``): at its end while halted; at
        once when lifted already (by another engine worker, whose lift left the paused
        bots this worker trades to it: they resume at this worker's next step)."""
        found = self.trading.load(risk, UserRisk)
        self._halted[found.owner_id] = found.halted_until or _AT_ONCE

    def set_limits(self, owner_id: str, changes: dict[str, object], actor: str) -> RiskView:
        """``changes``: the limits to set by GraphQL name; a name given as None clears its
        limit, a name left out keeps it."""
        with self.lock:
            risk = self.risk_of(owner_id)
            current = risk.limits if risk is not None else Limits()
            now = {"maxOpenDeals": current.max_open_deals,
                   "maxPositionQuote": current.max_position_quote,
                   "maxExposureQuote": current.max_exposure_quote,
                   "maxDailyLossQuote": current.max_daily_loss_quote}
            limits = parse_limits({**now, **changes})
            cause = self.trading.cause(actor)
            if risk is None:
                self.forget(risk_id(owner_id))
                risk = UserRisk.open(owner_id, cause)
            risk.set_limits(cause, limits)
            self.trading.save_all(risk)
            return self.view(owner_id)

    def view(self, owner_id: str) -> RiskView:
        """Under the runner's lock: its engines are not read half-way through a step."""
        with self.lock:
            risk = self.risk_of(owner_id)
            exposure = self.exposure(owner_id)
        if risk is None:
            return RiskView(Limits(), exposure, None, ZERO, None)
        return RiskView(risk.limits, exposure, risk.day, risk.day_pnl, risk.halted_until)

    def exposure(self, owner_id: str) -> Exposure:
        total = Exposure()
        for source in self._sources:
            total = total + source(owner_id)
        return total

    # --- the gate -------------------------------------------------------------------------

    def check(self, owner_id: UUID | str, adds_quote: Decimal, opens: str,
              position_quote: Decimal = ZERO) -> None:
        """Raise ``RiskLimitError`` (``RISK_LIMIT_REACHED``) when a buy of ``adds_quote``
        that ``opens`` a ``deal``, a ``safety_order`` or a ``position`` would pass one of
        the owner's limits; ``position_quote``: what its deal or position commits already."""
        risk = self.risk_of(str(owner_id))
        if risk is None or (risk.limits.empty and risk.halted_until is None):
            return
        if self.unreadable and str(owner_id) in self.unreadable.values() and (
                limit := _counted(risk.limits, opens) or _exposure_of(risk.limits, opens)):
            raise RiskLimitError(limit, "a bot of yours cannot be read by this version of "
                                 "the engine (BOT_NOT_LOADABLE): what it holds is unknown, "
                                 "so nothing the limit counts opens until it can be read")
        if self.judge is not None and (limit := _counted(risk.limits, opens)) is not None:
            if not self.judge(str(owner_id)):
                raise RiskLimitError(limit, "your bots are traded by several engine workers "
                                     "for a moment: nothing the limit counts opens until "
                                     "one holds them all")
            self.judged.add(str(owner_id))
        elif _counted(risk.limits, "deal") is None:  # (count limits cleared: their
            self.judged.discard(str(owner_id))  # appends fenced as any other's again)
        if (self.holds is not None and opens != "position"
                and risk.limits.max_exposure_quote is not None):
            self.holds.note(str(owner_id))  # the stamp, before the figures it stands for
        exposure = self.exposure(str(owner_id))
        if (opens == "position" and self.untraded is not None
                and risk.limits.max_exposure_quote is not None):
            exposure = exposure + self._logged(str(owner_id))
        refused = refusal(risk.limits, exposure, opens=opens, adds_quote=adds_quote,
                          position_quote=position_quote, halted_until=risk.halted_until)
        if refused is not None:
            raise refused

    def _logged(self, owner_id: str) -> Exposure:
        """The deals of the owner's bots another process trades (or none does), as the
        log has them. WHY: a position was judged with the deals of the process it was
        opened in, and an api process, or an engine worker holding none of the user's
        bots, counted none: any position passed ``maxExposureQuote``. The log is at most
        one step behind the engines (a step's events are appended in one transaction)."""
        roster = self._bots_of(owner_id)  # and the stopped bots whose deal runs on
        bots = self.untraded(owner_id, roster + self.stopped.holding(owner_id, roster))
        return logged_exposure(self.trading, bots) if bots else Exposure()

    def for_positions(self) -> PositionGate:
        """The two-argument check positions take (``risk_check``): a new position, with
        the hold it is opened under (``application/exposure_holds.py``)."""
        return PositionGate(self)

    # --- the daily loss limit (called by the runner, under its lock) ----------------------

    def resume(self) -> None:
        """After a restart: the users whose bots the daily loss limit paused, and those
        whose lift left a bot paused (``_left_paused``)."""
        owners = {n.originator_id for n in read_log(self.trading,
                                                     [topic_of(UserRisk.DailyLossReached)])}
        for owner_risk in owners:
            risk = self.trading.load(owner_risk, UserRisk)
            if risk.halted_until is not None:
                self._halted[risk.owner_id] = risk.halted_until
        for bot in self._left_paused():
            until = bot.risk_paused_until
            self._halted[bot.owner_id] = min(self._halted.get(bot.owner_id, until), until)

    def _left_paused(self) -> list[Bot]:
        """The bots the daily loss limit paused that are paused still (their last
        RiskPaused/RiskResumed is a pause, and the bot, loaded, says so). WHY: a lift
        resumes the bots its worker may write and leaves the others to the workers trading
        them, who resume them at their next step; when both died first (killed, leases
        expired), no worker knew: one started since watched only the halts not lifted,
        and the bot stayed paused for good. Watched here, its owner is due at its pause's
        end (at once, when lifted already): the step lifts what is left (``lift``), taking
        the bot when it is free, else left to the worker that holds it, started since too."""
        last: dict[UUID, str] = {}
        for n in read_log(self.trading, list(_PAUSE_TOPICS)):
            last[n.originator_id] = n.topic
        paused = [bot_id for bot_id, topic in last.items() if topic == _PAUSE_TOPICS[0]]
        bots = self.trading.load_many(paused, Bot) if paused else {}
        return [bot for bot in bots.values() if bot.status is BotStatus.PAUSED
                and getattr(bot, "risk_paused_until", None) is not None]

    def counts_losses(self, owner_id: str) -> bool:
        """True when the owner has a daily loss limit (their closed deals are counted)."""
        risk = self.risk_of(owner_id)
        return risk is not None and risk.limits.max_daily_loss_quote is not None

    def count_closed(self, deals: Iterable[Deal], cause: Cause, bot_of: BotSource) -> list:
        """Deals closed in this step: counted into their owner's day where a daily loss
        limit is set. Returns the aggregates to save in one transaction (the UserRisks, and
        the bots a limit reached pauses, as ``bot_of`` gives them: the runner's own copy of
        a bot it is stepping)."""
        by_owner: dict[str, list[Deal]] = {}
        for deal in deals:
            if deal.status is DealStatus.CLOSED and deal.realized_pnl is not None:
                by_owner.setdefault(deal.owner_id, []).append(deal)
        changed: list = []
        for owner_id, closed in by_owner.items():
            risk = self.risk_of(owner_id)
            if risk is None or risk.limits.max_daily_loss_quote is None:
                continue
            reached = False
            for deal in closed:
                reached = risk.count_result(cause, deal.id, deal.realized_pnl) or reached
            changed.append(risk)
            if reached:
                changed += self._pause_all(risk, cause, bot_of)
        return changed

    def _pause_all(self, risk: UserRisk, cause: Cause, bot_of: BotSource) -> list[Bot]:
        reason = (f"daily loss limit reached: {risk.day_loss} lost on {risk.day} (UTC), the "
                  f"limit is {risk.limits.max_daily_loss_quote}")
        log.warning("user %s: %s; bots paused until %s", risk.owner_id, reason,
                    risk.halted_until.isoformat())
        bots = [bot for bot_id in self._bots_of(risk.owner_id)
                if (bot := bot_of(bot_id)) is not None]
        for bot in bots:
            bot.risk_pause(cause, reason, risk.halted_until)
        return bots

    def saved(self, aggregates: Iterable) -> None:
        """The runner stored what ``count_closed`` or ``lift`` returned: the owners whose
        UserRisk it holds are watched for their lift (``due``) while paused, no longer once
        lifted. Only after the save: a refused one leaves the runner's mark as the log
        has it (a pause marked but never stored, a lift unmarked but never stored and the
        bots paused for good)."""
        for risk in aggregates:
            if not isinstance(risk, UserRisk):
                continue
            if risk.halted_until is not None:
                self._halted[risk.owner_id] = risk.halted_until
            elif not self._elsewhere.get(risk.owner_id):
                self._halted.pop(risk.owner_id, None)
                self._elsewhere.pop(risk.owner_id, None)
            # else lifted, some bots left to the workers that trade them: due still, so
            # that the next step looks again (see ``lift``)

    def due(self, at: datetime) -> list[str]:
        """The owners whose pause ends by ``at``."""
        return [owner for owner, until in self._halted.items() if at >= until]

    def lift(self, owner_id: str, cause: Cause, bot_of: BotSource) -> list:
        """A new day: the owner's UserRisk lifted, and each bot the limit paused (its pause
        ended by ``cause.at``) that this runner may write, as ``bot_of`` gives it, runs
        again. Not saved: the runner saves them in one transaction as it saves its other
        writes (fenced on an engine worker: one that lost a bot's lease writes nothing),
        then says so (``saved``).

        A bot another engine worker trades (``bot_of`` gives None) is left to it: that
        worker sees the lift in the log and resumes the bot at its next step (``forget``,
        ``watch``). WHY: the lift used to wait, all of it, until every paused bot was free,
        so one bot held elsewhere (its deal open) kept the user halted, all their bots
        paused, for as long as that deal lasted. The owner stays due here while a bot left
        so is still paused in the log, and is looked at again at each step (taken here
        once free: its worker may have died before it resumed it)."""
        risk = self.risk_of(owner_id)
        if risk is None:
            self._halted.pop(owner_id, None)  # (nothing of the owner's is stored)
            return []
        risk.lift_if_due(cause)  # else lifted elsewhere, or paused again: as the log has it
        # Only the bots the limit paused: the others have nothing to write, no lease to take
        paused = [bot_id for bot_id in self._bots_of(owner_id)
                  if _pause_ended(self.trading.get_bot(bot_id), cause.at)]
        resumed, elsewhere = [], set()
        for bot_id in paused:
            bot = bot_of(bot_id)  # the runner's own copy, or None: not its to write
            if bot is None:
                elsewhere.add(bot_id)
                continue
            bot.risk_resume(cause, f"a new day ({day_of(cause.at)}, UTC): the daily loss "
                                   "limit counts from 0 again")
            resumed.append(bot)
        if elsewhere and elsewhere != self._elsewhere.get(owner_id):  # (once, not per step)
            log.info("user %s: the daily loss limit lifted; %d paused bots are resumed by "
                     "the engine workers that trade them", owner_id, len(elsewhere))
        self._elsewhere[owner_id] = elsewhere
        return [risk, *resumed]

    def _bots_of(self, owner_id: str) -> list[UUID]:
        """The owner's bots that are not stopped (their roster)."""
        try:
            roster = self.trading.load(roster_id(owner_id), BotRoster)
        except NotFoundError:
            return []
        return [UUID(bot_id) for bot_id in roster.bots]


def logged_exposure(trading: Trading, bot_ids: Iterable[UUID]) -> Exposure:
    """What bots that this process does not trade hold open, as their events say (the risk
    limits' measure: an open deal each, and at most what it commits: its buys' cost, and
    while it has not begun to sell, the safety orders of its plan it has not filled, which
    may rest). A deal whose events this code cannot read (a newer version's) counts as its
    whole plan: the limit holds whatever it did. Loaded together (a few queries)."""
    bots = trading.load_many(bot_ids, Bot)
    holding = [bot for bot in bots.values() if bot.open_deal_id is not None]
    try:
        deals = trading.load_many([bot.open_deal_id for bot in holding], Deal)
    except Exception as error:  # (one of them unreadable: the reason it is not traded)
        log.debug("open deals read one at a time: %s", error)
        deals = {}
        for bot in holding:
            try:
                deals[bot.open_deal_id] = trading.get_deal(bot.open_deal_id)
            except Exception:
                continue
    committed = ZERO
    for bot in holding:
        plan = ladder(bot.config, Decimal(1))
        deal = deals.get(bot.open_deal_id)
        if deal is None:  # unreadable: at most its whole plan
            committed += plan[-1].total_quote
        elif deal.status is DealStatus.OPEN:
            committed += deal.cost
            if not deal.steps_sold:
                committed += sum((level.quote for level in plan[1 + deal.safety_orders_used:]),
                                 ZERO)
    return Exposure(len(holding), committed)


def _counted(limits: Limits, opens: str) -> str | None:
    """The first limit that counts all the owner's bots and judges a buy that ``opens``
    (a deal: open deals, exposure; a safety order: exposure), None when none is set. A
    position is no bot's: its check is as before."""
    if opens == "deal" and limits.max_open_deals is not None:
        return "maxOpenDeals"
    if opens in ("deal", "safety_order") and limits.max_exposure_quote is not None:
        return "maxExposureQuote"
    return None


def _exposure_of(limits: Limits, opens: str) -> str | None:
    """``maxExposureQuote`` when it judges a position (it counts the deals too)."""
    if opens == "position" and limits.max_exposure_quote is not None:
        return "maxExposureQuote"
    return None


def _pause_ended(bot: Bot, at: datetime) -> bool:
    """``bot`` is paused by the daily loss limit, and its pause ends by ``at``."""
    until = getattr(bot, "risk_paused_until", None)
    return until is not None and at >= until and bot.status is BotStatus.PAUSED
