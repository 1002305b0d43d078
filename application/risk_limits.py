"""Risk limits per user: setting them, the gate every buy asks first, and the daily loss
limit that pauses a user's bots until the next 00:00 UTC.

The gate (:meth:`RiskLimits.check`) decides from the user's limits (their UserRisk events)
and what they have open now, as the runners hold it in memory (``exposure`` sources: the
paper/live runner's engines, and positions when they are wired in). The engine asks it
through its injected ``risk`` port, the same in paper and live; backtests pass none.

The daily loss limit is kept by the runner through this class's methods of
``application/daily_loss.py``; what a process judges from the log rather than its engines
is measured by ``application/logged_exposure.py``, a position's commitment by
``application/position_exposure.py``.

Wiring (``bootstrap.open_runtime``): ``risk = RiskLimits(trading)``, then
``PaperTrading(..., risk=risk)`` (it adds its engines' exposure and shares its lock).
Positions add theirs with ``risk.add_exposure(positions.exposure_of)`` (owner id ->
``Exposure(0, committed quote)``) and take ``risk.for_positions()`` as their ``risk_check``.
On PostgreSQL, ``bootstrap_engine.open_exposure_holds`` makes a user's check and write one step
across processes (``application/exposure_holds.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from application.daily_loss import BotSource, DailyLossLimit
from application.exposure_holds import ExposureHolds, PositionGate
from application.logged_exposure import logged_exposure
from application.stopped_deals import StoppedDeals
from application.trading import Trading
from domain.errors import NotFoundError
from domain.money import ZERO
from domain.numbers import Bounds, parse_number, parse_whole
from domain.recording import topic_of
from domain.risk import Exposure, Limits, RiskLimitError, UserRisk, refusal, risk_id

__all__ = ["BotSource", "RiskLimits", "RiskView", "logged_exposure", "parse_limits"]
ExposureSource = Callable[[str], Exposure]  # owner id -> what they have open now
_QUOTE = Bounds(Decimal("1e-12"), Decimal("1e15"), sign_code="NOT_POSITIVE")
_DEALS = Bounds(Decimal(0), Decimal(100_000), sign_code="NEGATIVE")
# A halt begun or lifted, by any writer: its owner is watched for the lift (``forget``)
HALT_TOPICS = frozenset({topic_of(UserRisk.DailyLossReached),
                         topic_of(UserRisk.DailyLossLifted)})
_AT_ONCE = datetime.min.replace(tzinfo=UTC)  # due at any step


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


class RiskLimits(DailyLossLimit):
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
        """The check positions take (``risk_check``): a new position, or a buy added to
        one, with the hold it is decided under (``application/exposure_holds.py``)."""
        return PositionBuyGate(self)

class PositionBuyGate(PositionGate):
    """``PositionGate`` that also judges a buy added to a position: ``position_quote``,
    what the position commits already (its ``maxPositionQuote``)."""

    def __call__(self, owner_id, adds_quote, position_quote: Decimal = ZERO) -> None:
        self.risk.check(owner_id, adds_quote, "position", position_quote)


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
