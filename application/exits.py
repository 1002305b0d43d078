"""The exits of an open DCA deal beyond one take profit and one fixed stop (issue 12):
a trailing take profit, take profit steps, a break-even stop and a trailing stop loss.

It works out the levels from the deal and the prices the market reached; the engine
(application/engine.py) decides what to sell. The highest prices are kept here, not
recorded at every rise (they come from the market data): the deal records where trailing
started and what triggered an exit, so a restarted bot trails on from the recorded start.
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
        if deal.trailing_highest is not None:
            self._raise_tp(deal.trailing_highest)
        if deal.stop_trailing_from is not None:
            self.sl_highest = deal.stop_trailing_from

    def _raise_tp(self, price: Decimal) -> None:
        self.tp_highest = price
        self.tp_level = price * (ONE - self.config.trailing_take_profit_pct / HUNDRED)

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
                self.sl_highest = max(self.sl_highest, price)
            elif price >= self._activation():
                self.sl_highest = price
                deal.start_stop_trailing(cause, price=price, level=self.trailing_stop())
                started = True
        return started

    def trailing_stop(self) -> Decimal | None:
        self._sl_from_entry()
        if self.sl_highest is None:
            return None
        return self.sl_highest * (ONE - self.config.stop_loss_pct / HUNDRED)

    def stop(self) -> tuple[Decimal | None, CloseReason]:
        """The stop that rests and its reason. A trailing stop replaces the plain one once it
        trails (before, with an activation, the plain one rests); with break-even, the
        higher of the two rests (at a tie the trailing one). Else the deal's own stop: the
        plain one, or break-even once a step sold."""
        trailing = self.trailing_stop() if self.config.trailing_stop_loss else None
        if trailing is None:
            return self.deal.stop_loss_price, CloseReason.STOP_LOSS
        deal = self.deal
        if (self.config.stop_loss_to_breakeven and deal.steps_sold
                and deal.step_average > trailing):
            return deal.step_average, CloseReason.STOP_LOSS
        return trailing, CloseReason.TRAILING_STOP_LOSS

    def step_price(self) -> Decimal | None:
        """The price of the next take profit step, or None (no steps, or all sold)."""
        steps, deal = self.config.take_profit_steps, self.deal
        if deal.steps_sold >= len(steps):
            return None
        average = deal.step_average if deal.steps_sold else deal.average_entry
        return average * (ONE + steps[deal.steps_sold].pct / HUNDRED)

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
        stop, _ = self.stop()
        below = stop
        if self.tp_level is not None and (below is None or self.tp_level > below):
            below = self.tp_level
        if self.config.take_profit_steps:
            return below, self.step_price()
        if self.tp_highest is not None:
            return below, None  # trailing: a rise only raises the highest (high_watch)
        return below, self.deal.take_profit_price

    def high_watch(self) -> Decimal | None:
        """The lowest price at which a rise changes a level (the market then shows this
        watcher every rising leg's end): a trailing highest, or the activation price."""
        self._sl_from_entry()
        highs = [h for h in (self.tp_highest, self._activation(), self.sl_highest)
                 if h is not None]
        return min(highs, default=None)
