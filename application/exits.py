"""The exits of an open DCA deal beyond one take profit and one fixed stop (issue 12):
a trailing take profit, take profit steps, a break-even stop and a trailing stop loss.

It works out the levels from the deal and the prices the market reached; the engine
(application/engine.py) decides what to sell. The highest prices are kept here, not
recorded at every rise (they come from the market data): the deal records where trailing
started and what triggered an exit, so a restarted bot trails on from the recorded start.

The levels are asked for at every price the market visits, and change only with the deal
(a new event: its version) or a new highest: they are worked out once per change.
"""

from __future__ import annotations

from decimal import Decimal

from domain.dca import DcaConfig
from domain.deals import CloseReason, Deal
from domain.money import HUNDRED, ONE
from domain.recording import Cause


class DealExits:
    def __init__(self, config: DcaConfig, deal: Deal):
        self.config, self.deal = config, deal
        self.tp_highest: Decimal | None = None  # trailing take profit
        self.tp_level: Decimal | None = None
        self.sl_highest: Decimal | None = None  # trailing stop loss
        # Whether a rise can move anything without reaching a level (high_watch)
        self.follows_highs = (config.trailing_take_profit_pct is not None
                              or config.trailing_stop_loss)
        self._moves = 0  # counts the changes of the highests (the deal counts its own)
        self._known: tuple[int, int] | None = None  # what the worked out levels are of
        self._stop: tuple[Decimal | None, CloseReason] = (None, CloseReason.STOP_LOSS)
        self._levels: tuple[Decimal | None, Decimal | None] = (None, None)
        self._step: Decimal | None = None
        self._high_watch: Decimal | None = None
        if deal.trailing_highest is not None:
            self._raise_tp(deal.trailing_highest)
        if deal.stop_trailing_from is not None:
            self.sl_highest = deal.stop_trailing_from

    def _raise_tp(self, price: Decimal) -> None:
        self.tp_highest = price
        self.tp_level = self._tp_level_at(price)
        self._moves += 1

    def _tp_level_at(self, highest: Decimal) -> Decimal:
        return highest * (ONE - self.config.trailing_take_profit_pct / HUNDRED)

    def _activation(self) -> Decimal | None:
        """The price that starts the trailing stop, while it waits for one; else None."""
        config, deal = self.config, self.deal
        if (not config.trailing_stop_loss or self.sl_highest is not None
                or not config.stop_loss_activation_pct):
            return None
        return deal.average_entry * (ONE + config.stop_loss_activation_pct / HUNDRED)

    def _sl_from_entry(self) -> None:
        # without an activation the stop trails from the base order's fill price
        if (self.sl_highest is None and self.config.trailing_stop_loss
                and not self.config.stop_loss_activation_pct
                and self.deal.entry_price is not None):
            self.sl_highest = self.deal.entry_price
            self._moves += 1

    def reach(self, cause: Cause, price: Decimal) -> bool:
        """The market was at ``price``: trailing starts or rises. True when a start was
        recorded on the deal."""
        config, deal, started = self.config, self.deal, False
        if config.trailing_take_profit_pct is not None:
            if self.tp_highest is not None:
                if price > self.tp_highest:
                    self._raise_tp(price)
            elif deal.take_profit_price is not None and price >= deal.take_profit_price:
                self._raise_tp(price)
                deal.start_trailing(cause, price=price,
                                    trailing_pct=config.trailing_take_profit_pct,
                                    level=self.tp_level)
                started = True
        if config.trailing_stop_loss:
            self._sl_from_entry()
            if self.sl_highest is not None:
                if price > self.sl_highest:
                    self.sl_highest = price
                    self._moves += 1
            elif price >= self._activation():
                self.sl_highest = price
                self._moves += 1
                deal.start_stop_trailing(cause, price=price, level=self.trailing_stop())
                started = True
        return started

    def trailing_stop(self) -> Decimal | None:
        self._sl_from_entry()
        if self.sl_highest is None:
            return None
        return self.sl_highest * (ONE - self.config.stop_loss_pct / HUNDRED)

    def _work_out(self) -> None:
        """The levels of the deal as it is now, if it changed since they were worked out."""
        if self.sl_highest is None:
            self._sl_from_entry()
        known = (self.deal._version, self._moves)
        if known == self._known:
            return
        self._stop = stop = self._stop_at(self.trailing_stop())
        self._step = step = self._step_price()
        below = stop[0]
        if self.tp_level is not None and (below is None or self.tp_level > below):
            below = self.tp_level
        if self.config.take_profit_steps:
            self._levels = below, step
        elif self.tp_highest is not None:
            self._levels = below, None  # trailing: a rise only raises the highest (high_watch)
        else:
            self._levels = below, self.deal.take_profit_price
        highs = [h for h in (self.tp_highest, self._activation(), self.sl_highest)
                 if h is not None]
        self._high_watch = min(highs, default=None)
        self._known = known

    def _stop_at(self, trailing: Decimal | None) -> tuple[Decimal | None, CloseReason]:
        """The stop that rests when the trailing stop is at ``trailing``: see :meth:`stop`."""
        if trailing is None:
            return self.deal.stop_loss_price, CloseReason.STOP_LOSS
        deal = self.deal
        if (self.config.stop_loss_to_breakeven and deal.steps_sold
                and deal.step_average > trailing):
            return deal.step_average, CloseReason.STOP_LOSS
        return trailing, CloseReason.TRAILING_STOP_LOSS

    def stop(self) -> tuple[Decimal | None, CloseReason]:
        """The stop that rests and its reason. A trailing stop replaces the plain one once it
        trails (before, with an activation, the plain one rests); with break-even, the
        higher of the two rests (at a tie the trailing one). Else the deal's own stop: the
        plain one, or break-even once a step sold."""
        self._work_out()
        return self._stop

    def _step_price(self) -> Decimal | None:
        steps, deal = self.config.take_profit_steps, self.deal
        if deal.steps_sold >= len(steps):
            return None
        average = deal.step_average if deal.steps_sold else deal.average_entry
        return average * (ONE + steps[deal.steps_sold].pct / HUNDRED)

    def step_price(self) -> Decimal | None:
        """The price of the next take profit step, or None (no steps, or all sold)."""
        self._work_out()
        return self._step

    def step_amount(self) -> Decimal:
        """What the next step sells: its share of the units held at the first step, exact;
        the last step sells whatever is left."""
        steps, deal = self.config.take_profit_steps, self.deal
        if deal.steps_sold == len(steps) - 1:
            return deal.units
        held = deal.step_units if deal.steps_sold else deal.units
        return held * steps[deal.steps_sold].volume_pct / HUNDRED

    def levels(self) -> tuple[Decimal | None, Decimal | None]:
        """(below, above): a fall to ``below`` sells (the higher of the stop and the trailing
        take profit); a rise to ``above`` does (the next step, or the take profit)."""
        self._work_out()
        return self._levels

    def high_watch(self) -> Decimal | None:
        """The lowest price at which a rise changes a level (the market then shows this
        watcher every rising leg's end): a trailing highest, or the activation price."""
        if not self.follows_highs:
            return None
        self._work_out()
        return self._high_watch

    # --- the backtest's fast path ----------------------------------------------------------

    def only_raises(self, low: Decimal, high: Decimal) -> bool:
        """Whether a candle ranging from ``low`` to ``high`` can do nothing but raise the
        highests: something trails, no level above is reached (a step, the take profit, an
        activation) and the price stays above every level below, even once raised by
        ``high`` (the levels below only rise within a candle: the last is the highest)."""
        self._work_out()
        if self.tp_highest is None and self.sl_highest is None:
            return False
        above = self._levels[1]
        if above is not None and high >= above:
            return False
        activation = self._activation()
        if activation is not None and high >= activation:
            return False
        sl_highest = self.sl_highest
        trailing = None if sl_highest is None else (
            (high if high > sl_highest else sl_highest)
            * (ONE - self.config.stop_loss_pct / HUNDRED))
        below = self._stop_at(trailing)[0]
        if self.tp_highest is not None:
            tp_level = self._tp_level_at(high if high > self.tp_highest else self.tp_highest)
            below = tp_level if below is None or tp_level > below else below
        return below is None or low > below

    def raise_to(self, price: Decimal) -> None:
        """The market was at ``price`` in a candle that :meth:`only_raises`: as
        :meth:`reach`, where nothing can start (so nothing is recorded)."""
        if self.reach(None, price):  # type: ignore[arg-type]
            raise AssertionError("a candle that only raises the highests started trailing")
