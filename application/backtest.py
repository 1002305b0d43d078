"""The backtest loop: one DcaEngine, a simulated venue and candles, as fast as exactness allows.

Most candles change nothing: while a deal is open, nothing happens until the price reaches a
resting order or a target. A vectorised scan (numpy, on floats) finds the next candle whose
range reaches the band of live triggers; only that candle is walked, in Decimal, by the
venue. Floats only *locate* candidates: correctly rounded conversion is monotonic, so a
candle that crosses a level exactly also crosses it in floats, and a false alarm is harmless.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np

from application.drawdown import DrawdownTracker
from application.engine import DcaEngine
from domain.backtests import BACKTEST_OWNER, BacktestRun
from domain.bots import Bot
from domain.dca import DcaConfig
from domain.errors import DomainError
from domain.money import ZERO
from domain.ports import CandleSeries, Exchange, IdSource, SimulatedVenue
from domain.recording import ENGINE, Cause

_FIRST_CHUNK = 512


class UnsupportedOptionError(DomainError):
    code = "UNSUPPORTED_OPTION"


@dataclass
class BacktestResult:
    run_id: UUID
    bot_id: UUID
    summary: dict[str, Any]
    deals: list[dict[str, Any]]
    candles: CandleSeries
    open_deal: dict[str, Any] | None  # the deal still open at the end of the data, if any
    # Equity at every candle's close, as floats: for pictures (with ``keep_equity``).
    equity: np.ndarray | None = None
    # Exact equity at evenly spaced candles (with ``equity_points``): (open time ms, equity).
    equity_points: list[tuple[int, Decimal]] | None = None


class Venue(Exchange, SimulatedVenue):
    """What the loop needs from its exchange: the port, and a market it can move."""


def refuse_unsupported(config: DcaConfig) -> None:
    """Options a backtest cannot simulate exactly are refused here: a bot that waits for
    signals (a backtest has none to give it, so it would never trade)."""
    if config.waits_for_signal:
        raise DomainError("a bot with start_condition \"signal\" opens deals only on webhook "
                          "signals, which a backtest does not have: backtest it with "
                          "\"asap\"", code="SIGNAL_BOT_NOT_BACKTESTABLE",
                          field="start_condition")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_to_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


class _Scanner:
    """Finds the next candle whose low/high reaches a band, in growing chunks, so a scan
    costs about the distance travelled rather than the length of the series."""

    def __init__(self, low: np.ndarray, high: np.ndarray):
        self.low, self.high, self.n = low, high, len(low)
        # The last band asked for and its floats: a Decimal's float is made through its
        # text, and the band's levels stay the same objects from one step to the next.
        self._band: tuple[Decimal | None, Decimal | None] = (None, None)
        self._floats = (-np.inf, np.inf)

    def next_reaching(self, start: int, below: Decimal | None, above: Decimal | None) -> int:
        if below is self._band[0] and above is self._band[1]:
            lo, hi = self._floats
        else:
            lo = float(below) if below is not None else -np.inf
            hi = float(above) if above is not None else np.inf
            self._band, self._floats = (below, above), (lo, hi)
        if start < self.n and (self.low[start] <= lo or self.high[start] >= hi):
            return start  # the very next one (a trailing deal's rising run): no array work
        chunk, i = _FIRST_CHUNK, start
        while i < self.n:
            end = min(self.n, i + chunk)
            reaching = self.low[i:end] <= lo
            reaching |= self.high[i:end] >= hi
            first = int(reaching.argmax())  # the first True, or 0 when there is none
            if reaching[first]:
                return i + first
            i, chunk = end, chunk * 4
        return self.n


def run_backtest(
    candles: CandleSeries,
    config: DcaConfig,
    *,
    venue: Venue,
    ids: IdSource,
    append: Callable[[list[Any]], int],
    run_seed: str,
    fee_rate: Decimal,
    balance: Decimal | None,
    keep_deals: bool = False,
    keep_equity: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    summary_keys: Sequence[str] | None = None,
    period: tuple[int | None, int | None] | None = None,
    equity_points: int | None = None,
    fast_trailing: bool = True,
) -> BacktestResult:
    """Run ``config`` over ``candles``. ``append(events)`` appends events in one transaction
    and returns how many it appended. ``summary_keys``: the figures to record at the end, in
    that order (those a stored run recorded, to re-run it); by default all of them.
    ``period``: the (from, to) UTC ms the caller cut ``candles`` to, recorded with the run.
    ``fast_trailing``: False walks every candle that rises above a trailing highest, as
    any other (the general path, which tests hold the fast one to, byte for byte)."""
    refuse_unsupported(config)
    if balance is not None and balance < ZERO:
        raise DomainError(f"a starting balance of {balance} is negative", code="OUT_OF_RANGE",
                          field="balance")
    n = len(candles)
    if n == 0:
        raise DomainError("there are no candles to run on", code="NO_CANDLES")
    interval = candles.interval_ms or 0
    first = Cause(ms_to_datetime(int(candles.timestamps[0])), ENGINE, f"{run_seed}:start")
    run_id, bot_id = ids.new_id(), ids.new_id()
    run = BacktestRun.start(
        run_id, first, run_seed=run_seed, bot_id=bot_id, candles_source=candles.source,
        candles_sha256=candles.sha256, candles_count=n, config=config, fee_rate=fee_rate,
        balance=balance,
    )
    if period is not None:
        run.choose_period(first, *period)
    bot = Bot.create(bot_id, first, name=f"backtest {run_seed}"[:64], owner_id=BACKTEST_OWNER,
                     exchange_account_id="paper", config=config)
    bot.start(first)
    steps = _Steps(append)
    steps.add(run, bot)
    engine = DcaEngine(bot, venue, ids, keep_deals=keep_deals)
    drawdown = DrawdownTracker(candles, keep_curve=keep_equity, exact_points=equity_points)
    scanner = _Scanner(candles.low, candles.high)
    capital = _CapitalMeter()
    try:
        _walk(candles, engine, venue, steps, scanner, drawdown, capital, run_seed, on_progress,
              fast_trailing)
        events = steps.flush()
        summary = _summary(candles, engine, drawdown, candles.exact_close(n - 1), events,
                           balance, capital)
        last_close_at = ms_to_datetime(int(candles.timestamps[-1]) + interval)
        run.complete(Cause(last_close_at, ENGINE, f"{run_seed}:end"),
                     _stored_summary(summary, summary_keys))
        steps.add(run)
        summary["events"] = steps.flush()
    except BaseException as error:
        at = engine.step_time or first.at
        steps.record_interruption(run, Cause(at, ENGINE, f"{run_seed}:interrupted"), error)
        raise
    stepped = bool(config.take_profit_steps)
    deals = [_deal_row(d, interval, stepped) for d in engine.tally.closed_deals]
    points = None if drawdown.points is None else [
        (int(candles.timestamps[i]), drawdown.points[i]) for i in sorted(drawdown.points)]
    return BacktestResult(run_id, bot_id, summary, deals, candles,
                          _open_deal_row(engine, interval, summary["unrealized_pnl"]),
                          drawdown.curve, points)


def _only_raises(engine: DcaEngine, venue: Venue, low: Decimal, high: Decimal) -> bool:
    """Whether a candle would only raise a trailing deal's highests: it reaches none of the
    venue's resting orders and no level of the engine's."""
    below, above = venue.levels_below(), venue.levels_above()
    return ((not below or low > max(below)) and (not above or high < min(above))
            and engine.only_raises(low, high))


def _walk(candles: CandleSeries, engine: DcaEngine, venue: Venue, steps: _Steps,
          scanner: _Scanner, drawdown: DrawdownTracker, capital: _CapitalMeter, run_seed: str,
          on_progress: Callable[[int, int], None] | None, light: bool = True) -> None:
    """Step the engine through the candles that can change something, skipping the rest.
    A candle reached only because it rises above a trailing highest, and reaching no level,
    raises the highest without being walked (``light``; off: walked like any other)."""
    n, quote_asset = len(candles), engine.config.quote_asset
    # only a trailing exit has highests to raise (a backtest's bot keeps its config)
    light = light and (engine.config.trailing_take_profit_pct is not None
                       or engine.config.trailing_stop_loss)
    # A candle closes an interval after it opens (worked out for the candles walked only:
    # the whole series' close times cost a 4 MB array and a pass over it).
    opens_at, interval = candles.timestamps, candles.interval_ms or 0
    j = 0
    while j < n:
        o, h, low, c = candles.exact(j)
        if light and engine.high_watch() is not None and _only_raises(engine, venue, low, h):
            engine.raise_highest(o, h)  # all walking this candle would do
        else:
            engine.begin_step(Cause(ms_to_datetime(int(opens_at[j]) + interval), ENGINE,
                                    f"{run_seed}:{j}"))
            venue.walk_candle(o, h, low, c, engine)
            engine.on_close(c)
            changed = engine.take_changes()
            if changed:
                steps.add(*changed)
                capital.note(engine.open_deal_cost(), venue.fetch_balance()[quote_asset])
        drawdown.sample(j, engine.tally.realized_pnl, engine.open_deal_state(), c)
        if engine.wants_next_close:
            nxt = j + 1
            if engine.ready_at is not None:  # cooling down: first close at or after it
                ready_ms = datetime_to_ms(engine.ready_at)
                nxt = max(nxt, int(np.searchsorted(opens_at, ready_ms - interval,
                                                   side="left")))
        else:
            below, above = venue.trigger_band(engine)
            nxt = scanner.next_reaching(j + 1, below, above)
        drawdown.skip(j + 1, nxt, engine.tally.realized_pnl, engine.open_deal_state())
        if on_progress is not None:
            on_progress(nxt, n)
        j = nxt


class _Steps:
    """The events of the run's steps, appended in the order the steps took them, a few
    thousand at a time: one transaction per step cost a run stored in SQLite most of its
    time. The log is the same as with a transaction per step, and the run is stored whole
    or not at all more often."""

    BATCH_EVENTS = 4096

    def __init__(self, append: Callable[[list[Any]], int]):
        self.append, self.pending, self.appended = append, [], 0

    def add(self, *aggregates: Any) -> None:
        for aggregate in aggregates:
            self.pending.extend(aggregate.collect_events())
        if len(self.pending) >= self.BATCH_EVENTS:
            self.flush()

    def flush(self) -> int:
        """Append what is pending; the number of events appended so far."""
        if self.pending:
            self.appended += self.append(self.pending)
            self.pending = []
        return self.appended

    def record_interruption(self, run: BacktestRun, cause: Cause, error: BaseException) -> None:
        """The run stopped early: drop what is not stored yet (a step may be half added)
        and, if some of it was stored, mark it interrupted. A store that fails now leaves
        it without an end (``incomplete``); either way what is stored is whole steps."""
        self.pending = []
        if not self.appended or run.status != "incomplete":
            return
        with contextlib.suppress(Exception):
            run.interrupt(cause, _reason(error))
            self.append(run.collect_events())
            error.add_note(f"the {self.appended} events the run stored before it stopped are "
                           "kept, marked interrupted: `tradetape replay --check` checks them "
                           "as the start of the whole run")


def _reason(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "stopped by its user"
    if isinstance(error, DomainError):
        return str(error)  # its code first
    return f"{type(error).__name__}: {error}"


class _CapitalMeter:
    """Most quote ever committed: the open deal's cost and buy fees plus what resting buy
    orders lock (with their fee). It only rises when a deal opens, i.e. at a step's end."""

    def __init__(self) -> None:
        self.max_committed = ZERO

    def note(self, deal_cost: Decimal | None, quote_balance) -> None:
        committed = (deal_cost if deal_cost is not None else ZERO) + quote_balance.locked
        self.max_committed = max(self.max_committed, committed)


def _summary(candles, engine: DcaEngine, drawdown, last_close, events, balance, capital) -> dict:
    t = engine.tally
    state = engine.open_deal_state()
    unrealized = state[0] * last_close - state[1] if state else ZERO
    return {
        "candles": len(candles),
        "deals_closed": t.deals_closed,
        "deals_open": 1 if state else 0,
        "take_profits": t.take_profits,
        "stop_losses": t.stop_losses,
        # only for a bot with the exit they count: the figures of every other run stay
        **({"trailing_take_profits": t.trailing_take_profits}
           if engine.config.trailing_take_profit_pct is not None else {}),
        **({"take_profit_steps_filled": t.take_profit_steps_filled}
           if engine.config.take_profit_steps else {}),
        **({"trailing_stop_losses": t.trailing_stop_losses}
           if engine.config.trailing_stop_loss else {}),
        "realized_pnl": t.realized_pnl,
        "unrealized_pnl": unrealized,
        "total_pnl": t.realized_pnl + unrealized,  # the open deal marked at the last close
        "fees_closed_deals": t.fees_closed_deals,
        "win_rate": (Decimal(t.wins) / t.deals_closed) if t.deals_closed else None,
        "max_safety_orders_used": t.max_safety_orders_used,
        "max_drawdown": drawdown.max_drawdown,
        "max_capital_committed": capital.max_committed,
        "orders_rejected": t.orders_rejected,
        "bot_error": engine.bot.error_reason,
        "balance": balance,
        "gaps": len(getattr(candles, "gaps", ())),
        "events": events,
        # The shapes the P/L views use for live bots (ROI on the capital measured here).
        "profit_factor": t.gross_profit / t.gross_loss if t.gross_loss else None,
        "roi": t.realized_pnl / capital.max_committed if capital.max_committed else None,
        # Holding from the first close (where the first deal opens) to the last, to compare.
        "market_change": last_close / candles.exact_close(0) - 1,
        "avg_deal_seconds": t.deal_seconds // t.deals_closed if t.deals_closed else None,
        "longest_deal_seconds": t.longest_deal_seconds if t.deals_closed else None,
    }


# Every version has recorded these at the end of a run: a stored run without one of them
# was altered, and re-running it must say so.
ALWAYS_RECORDED = (
    "candles", "deals_closed", "deals_open", "take_profits", "stop_losses", "realized_pnl",
    "unrealized_pnl", "fees_closed_deals", "win_rate", "max_safety_orders_used",
    "max_drawdown", "max_capital_committed", "orders_rejected", "balance", "gaps",
)


def summary_keys_of(recorded: dict[str, Any] | None) -> list[str] | None:
    """The figures a re-run of a stored run records: those it recorded, in its order, and
    any that every version records (so a removed figure shows as a difference)."""
    if recorded is None:
        return None
    return [*recorded, *(key for key in ALWAYS_RECORDED if key not in recorded)]


def _stored_summary(summary: dict, keys: Sequence[str] | None) -> dict:
    """What the run's Completed event records: every figure but the event count, or, when
    re-running a stored run, the figures it recorded (an older version recorded fewer)."""
    if keys is None:
        return {k: v for k, v in summary.items() if k != "events"}
    return {key: summary.get(key) for key in keys}


def _open_deal_row(engine: DcaEngine, interval_ms: int, unrealized: Decimal) -> dict | None:
    """The open deal as a deal row (no exit yet) with the summary's unrealized P/L."""
    if engine.open_deal_state() is None:
        return None
    row = _deal_row(engine.deal, interval_ms, bool(engine.config.take_profit_steps))
    row["unrealized_pnl"] = unrealized
    row["units"] = engine.deal.units
    return row


def _deal_row(deal, interval_ms: int, stepped: bool = False) -> dict[str, Any]:
    """``opened``/``closed``: open time (UTC ms) of the candle in which each happened; the
    events themselves are stamped at that candle's close, when the decision was taken."""
    closed_at = deal.closed_at
    return {
        "id": str(deal.id),
        "opened": datetime_to_ms(deal.opened_at) - interval_ms,
        "closed": None if closed_at is None else datetime_to_ms(closed_at) - interval_ms,
        "reason": None if deal.close_reason is None else str(deal.close_reason),
        "safety_orders": deal.safety_orders_used,
        "entry": deal.entry_price,
        "avg_entry": deal.average_entry,
        "exit": deal.exit_price,
        "pnl": deal.realized_pnl,
        "fees": deal.fees,
        "cost": deal.cost,
        **({"sells": _sells(deal)} if stepped else {}),
    }


def _sells(deal) -> list[dict[str, Any]]:
    """Every sell of a deal that sold in steps, the closing one last (if it closed)."""
    sells = [{"price": p, "amount": a, "fee": f} for p, a, f in deal.sells]
    if deal.exit_amount is not None:
        sells.append({"price": deal.exit_price, "amount": deal.exit_amount,
                      "fee": deal.exit_fee})
    return sells

