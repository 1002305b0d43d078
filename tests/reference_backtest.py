"""Independent reference implementation of the DCA backtest rules (the test oracle).

Deliberately plain and slow: standard library only, Decimal everywhere, and nothing imported
from the project, so that the event-sourced engine can be compared against it. The rules it
implements are the ones written out in the task that created it (spot, long only):

* A deal opens with a market buy of ``base_order_quote`` at a candle's close (the first candle,
  and the candle in which the previous deal closed). All safety orders then rest as limit buys.
* Within a candle the price moves open → low → high → close (close ≥ open), else
  open → high → low → close. Orders the open has already crossed fill at the open; between two
  path points an order fills at its own price, in the order the moving price meets it.
* Take profit / stop loss are measured from the average entry, recomputed after every fill.
* With a ``balance`` every buy must be covered by free quote (notional × (1 + fee)), else it
  is rejected; resting orders lock their quote until they fill or are cancelled. A rejected
  base order stops the bot: no deal opens after it (retrying would fail at every close, as
  nothing but the bot's own deals moves its balance).
* ``trailing_take_profit_pct`` = d (issue 12): reaching the take profit price sells nothing;
  trailing starts with highest = the end of the rising leg that reached it (or the open, when
  the candle opens at or above it). Every later open and leg end the price reaches raises
  the highest. Everything sells when the price falls to highest × (1 − d/100), at that price,
  or at the open when a candle opens at or below it. Once started it stays on whatever fills
  later, and counts as a take profit (reason ``trailing_take_profit``). At one price on a
  falling leg: safety buys, then the trailing sell, then the stop; at an open: buys, stop,
  then the trailing sell.
* ``take_profit_steps`` (issue 12): step i sells ``volume_pct_i`` % of the units held when
  the first step sold (the last step: all that is left) at avg × (1 + pct_i/100), avg moving
  with buys until the first step sells; then the resting safety orders are cancelled and the
  step prices stay. An open at or above several steps sells each at the open, in order.
  ``stop_loss_to_breakeven``: from the first step on, a stop rests at avg too.
* ``trailing_stop_loss`` (needs ``stop_loss_pct`` = SL): the stop is highest × (1 − SL/100),
  highest starting at the base order's price and rising with every price reached.
  ``stop_loss_activation_pct`` = A > 0: the plain stop rests until a price reached is at or
  above avg × (1 + A/100); highest starts at that price. Of the stops that apply (plain or
  trailing, break-even) the highest rests; at a tie, the trailing one.
* Reasons: ``take_profit_step`` (the last step closed it), ``trailing_stop_loss`` (the
  trailing level sold), ``stop_loss`` (the plain and the break-even stop). A deal's P/L is
  all its sells' proceeds − cost − buy fees − sell fees; an open deal is marked at
  units × close + its sells' proceeds − their fees − cost − buy fees.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from itertools import pairwise

Candle = tuple[int, Decimal, Decimal, Decimal, Decimal]  # (ts_ms, open, high, low, close)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


class SafetyOrder:
    def __init__(self, number: int, quote: Decimal, price: Decimal) -> None:
        self.number = number  # 1 = shallowest
        self.quote = quote
        self.price = price
        self.units = quote / price  # fixed when placed, even if it fills at a better price


class Deal:
    def __init__(self, opened: int, entry: Decimal) -> None:
        self.opened = opened
        self.entry = entry  # the base order's price
        self.units = ZERO
        self.bought = ZERO  # units bought (sells do not change the average)
        self.cost = ZERO  # quote spent on buys, fees excluded
        self.fees = ZERO  # buy fees so far
        self.resting: list[SafetyOrder] = []  # shallowest first
        self.safety_filled = 0
        self.highest: Decimal | None = None  # trailing take profit: None until it starts
        self.sl_highest: Decimal | None = None  # trailing stop: None until it trails
        self.steps_sold = 0
        self.step_units = ZERO  # units held when the first step sold
        self.step_avg: Decimal | None = None  # the average the step prices froze at
        self.sells: list[dict] = []
        self.proceeds = ZERO
        self.sell_fees = ZERO

    def avg(self) -> Decimal:
        return self.cost / self.bought


class ReferenceBacktest:
    def __init__(self, config: dict, fee_rate: Decimal, balance: Decimal | None) -> None:
        self.base_quote = Decimal(config["base_order_quote"])
        self.safety_quote = Decimal(config["safety_order_quote"])
        self.max_safety = int(config["max_safety_orders"])
        self.deviation = Decimal(config["price_deviation_pct"])
        self.volume_scale = Decimal(config["safety_volume_scale"])
        self.step_scale = Decimal(config["safety_step_scale"])
        self.tp_pct = Decimal(config.get("take_profit_pct") or "0")  # (steps replace it)
        sl = config.get("stop_loss_pct")
        self.sl_pct = None if sl is None else Decimal(sl)
        trailing = config.get("trailing_take_profit_pct")
        self.trail_pct = None if trailing is None else Decimal(trailing)
        self.steps = [(Decimal(s["pct"]), Decimal(s["volume_pct"]))
                      for s in config.get("take_profit_steps") or []]
        if self.steps:
            self.tp_pct = self.steps[0][0]
        self.breakeven = bool(config.get("stop_loss_to_breakeven"))
        self.trailing_sl = bool(config.get("trailing_stop_loss"))
        activation = config.get("stop_loss_activation_pct")
        self.activation = ZERO if activation is None else Decimal(activation)
        self.steps_filled = 0  # every step sold, the open deal's too
        self.fee_rate = fee_rate
        self.free = balance  # None = unlimited account
        self.deal: Deal | None = None
        self.closed: list[dict] = []
        self.realized = ZERO
        self.rejected = 0
        self.stopped = False  # by a rejected base order
        self.max_committed = ZERO
        self.peak = ZERO
        self.max_drawdown = ZERO
        self.equity: list[Decimal] = []  # at every candle's close

    # --- capital -------------------------------------------------------------------------
    def committed(self) -> Decimal:
        deal = self.deal
        if deal is None:
            return ZERO
        resting = sum((o.quote * (ONE + self.fee_rate) for o in deal.resting), ZERO)
        return deal.cost + deal.fees + resting

    def note_capital(self) -> None:
        self.max_committed = max(self.max_committed, self.committed())

    def accept(self, notional: Decimal) -> bool:
        """May a buy of this notional be placed? Counts a rejection when not."""
        if self.free is None or self.free >= notional * (ONE + self.fee_rate):
            return True
        self.rejected += 1
        return False

    # --- deal life -----------------------------------------------------------------------
    def take_profit(self) -> Decimal:
        return self.deal.avg() * (ONE + self.tp_pct / HUNDRED)

    def stop(self) -> tuple[Decimal, str] | None:
        """The stop that rests (level, reason), or None."""
        deal, levels = self.deal, []
        if deal.sl_highest is not None:
            levels.append((deal.sl_highest * (ONE - self.sl_pct / HUNDRED), 1,
                           "trailing_stop_loss"))
        elif self.sl_pct is not None:
            levels.append((deal.avg() * (ONE - self.sl_pct / HUNDRED), 0, "stop_loss"))
        if self.breakeven and deal.steps_sold:
            levels.append((deal.step_avg, 0, "stop_loss"))
        if not levels:
            return None
        level, _, reason = max(levels, key=lambda x: (x[0], x[1]))
        return level, reason

    def step_price(self) -> Decimal | None:
        """The price of the next step to sell, or None."""
        deal = self.deal
        if deal.steps_sold >= len(self.steps):
            return None
        avg = deal.step_avg if deal.step_avg is not None else deal.avg()
        return avg * (ONE + self.steps[deal.steps_sold][0] / HUNDRED)

    def sell_step(self, ts: int, price: Decimal) -> bool:
        """Sell the next step at ``price``. True if it was the last (the deal closed)."""
        deal = self.deal
        self.steps_filled += 1
        if deal.steps_sold == len(self.steps) - 1:
            self.close_deal(ts, price, "take_profit_step")
            return True
        if deal.steps_sold == 0:
            deal.step_units, deal.step_avg = deal.units, deal.avg()
            self.cancel_resting()
        amount = deal.step_units * self.steps[deal.steps_sold][1] / HUNDRED
        self.sell(amount, price)
        deal.steps_sold += 1
        return False

    def sell(self, amount: Decimal, price: Decimal) -> None:
        deal = self.deal
        proceeds = amount * price
        fee = proceeds * self.fee_rate
        deal.units -= amount
        deal.proceeds += proceeds
        deal.sell_fees += fee
        deal.sells.append({"price": price, "amount": amount, "fee": fee})
        if self.free is not None:
            self.free += proceeds - fee

    def cancel_resting(self) -> None:
        if self.free is not None:
            for order in self.deal.resting:
                self.free += order.quote * (ONE + self.fee_rate)
        self.deal.resting = []

    def trail_level(self) -> Decimal | None:
        if self.deal.highest is None:
            return None
        return self.deal.highest * (ONE - self.trail_pct / HUNDRED)

    def reach(self, price: Decimal) -> None:
        """Trailing: the price was at ``price`` (an open, or a rising leg's end)."""
        deal = self.deal
        if self.trail_pct is not None:
            if deal.highest is not None:
                deal.highest = max(deal.highest, price)
            elif price >= self.take_profit():
                deal.highest = price
        if self.trailing_sl:
            if deal.sl_highest is not None:
                deal.sl_highest = max(deal.sl_highest, price)
            elif price >= deal.avg() * (ONE + self.activation / HUNDRED):
                deal.sl_highest = price

    def buy(self, units: Decimal, price: Decimal) -> None:
        cost = units * price
        fee = cost * self.fee_rate
        self.deal.units += units
        self.deal.bought += units
        self.deal.cost += cost
        self.deal.fees += fee
        if self.free is not None:
            self.free -= cost + fee
        self.note_capital()

    def open_deal(self, ts: int, price: Decimal) -> None:
        if not self.accept(self.base_quote):
            self.stopped = True
            return
        self.deal = Deal(ts, price)
        self.buy(self.base_quote / price, price)
        if self.trailing_sl and not self.activation:
            self.deal.sl_highest = price
        step_sum = ZERO
        for n in range(1, self.max_safety + 1):
            step_sum += self.step_scale ** (n - 1)
            quote = self.safety_quote * self.volume_scale ** (n - 1)
            level = price * (ONE - self.deviation * step_sum / HUNDRED)
            if level <= ZERO:
                raise ValueError(f"safety order {n} would sit at a price <= 0")
            if self.accept(quote):
                if self.free is not None:
                    self.free -= quote * (ONE + self.fee_rate)  # lock it
                self.deal.resting.append(SafetyOrder(n, quote, level))
                self.note_capital()

    def fill_safety(self, order: SafetyOrder, price: Decimal) -> None:
        self.deal.resting.remove(order)
        if self.free is not None:
            self.free += order.quote * (ONE + self.fee_rate)  # release its lock
        self.deal.safety_filled += 1
        self.buy(order.units, price)

    def close_deal(self, ts: int, price: Decimal, reason: str) -> None:
        deal = self.deal
        units = deal.units
        self.cancel_resting()
        self.sell(units, price)
        pnl = deal.proceeds - deal.cost - deal.fees - deal.sell_fees
        self.closed.append(
            {
                "opened": deal.opened,
                "closed": ts,
                "reason": reason,
                "safety_orders": deal.safety_filled,
                "entry": deal.entry,
                "avg_entry": deal.avg(),
                "exit": price,
                "pnl": pnl,
                "fees": deal.fees + deal.sell_fees,
                "cost": deal.cost,
                "units": units,
                "sells": deal.sells,
            }
        )
        self.realized += pnl
        self.deal = None
        self.note_capital()

    # --- price path ----------------------------------------------------------------------
    def at_open(self, ts: int, price: Decimal) -> bool:
        """Fill at the open everything the open has crossed. True if the deal closed."""
        for order in list(self.deal.resting):  # shallowest first
            if price <= order.price:
                self.fill_safety(order, price)
        self.reach(price)
        stop = self.stop()
        if stop is not None and price <= stop[0]:
            self.close_deal(ts, price, stop[1])
            return True
        if self.steps:
            while (step := self.step_price()) is not None and price >= step:
                if self.sell_step(ts, price):
                    return True
            return False
        if self.trail_pct is not None:
            level = self.trail_level()
            if level is not None and price <= level:
                self.close_deal(ts, price, "trailing_take_profit")
                return True
            return False
        if price >= self.take_profit():
            self.close_deal(ts, price, "take_profit")
            return True
        return False

    def move(self, ts: int, start: Decimal, end: Decimal) -> bool:
        """Move the price from start to end; orders fill at their own price. True if closed.

        Nothing can trigger above ``start`` here: the open and earlier legs already filled it.
        """
        if end < start:
            while True:
                # (trigger, tie-break): at equal prices the safety order (2) goes first, then
                # the trailing take profit (1), then the stop loss (0)
                hits = [(o.price, 2, o) for o in self.deal.resting if o.price >= end]
                stop = self.stop()
                if stop is not None and stop[0] >= end:
                    hits.append((stop[0], 0, stop[1]))
                level = self.trail_level() if self.trail_pct is not None else None
                if level is not None and level >= end:
                    hits.append((level, 1, "trailing_take_profit"))
                if not hits:
                    return False
                price, _, order = max(hits, key=lambda hit: (hit[0], hit[1]))
                if isinstance(order, str):
                    self.close_deal(ts, price, order)
                    return True
                self.fill_safety(order, price)
        if end <= start:
            return False
        if self.steps:
            while (step := self.step_price()) is not None and step <= end:
                if self.sell_step(ts, step):
                    return True
        elif self.trail_pct is None and self.take_profit() <= end:
            self.close_deal(ts, self.take_profit(), "take_profit")
            return True
        self.reach(end)  # a rising leg counts up to its end; trailing sells nothing on it
        return False

    def on_candle(self, candle: Candle) -> None:
        ts, open_, high, low, close = candle
        if self.deal is not None:
            path = [open_, low, high, close] if close >= open_ else [open_, high, low, close]
            if not self.at_open(ts, open_):
                for start, end in pairwise(path):
                    if self.move(ts, start, end):
                        break
        if self.deal is None and not self.stopped:
            self.open_deal(ts, close)
        equity = self.realized + self.unrealized(close)
        self.equity.append(equity)
        self.peak = max(self.peak, equity)
        self.max_drawdown = max(self.max_drawdown, self.peak - equity)

    def unrealized(self, price: Decimal) -> Decimal:
        deal = self.deal
        if deal is None:
            return ZERO
        return (deal.units * price + deal.proceeds - deal.sell_fees - deal.cost - deal.fees)


def run_reference(
    config: dict,
    candles: list[Candle],
    fee_rate: Decimal = Decimal("0.001"),
    balance: Decimal | None = None,
) -> dict:
    """Run the DCA rules over ``candles`` and return the summary (see module docstring)."""
    # The default precision and rounding, whatever the caller did to its own context.
    with localcontext(Context(prec=28, rounding=ROUND_HALF_EVEN)):
        run = ReferenceBacktest(config, fee_rate, balance)
        for candle in candles:
            run.on_candle(candle)
        deals = run.closed
        wins = sum(1 for d in deals if d["pnl"] > ZERO)
        last_close = candles[-1][4] if candles else ZERO
        return {
            "candles": len(candles),
            "deals_closed": len(deals),
            "deals_open": 0 if run.deal is None else 1,
            "take_profits": sum(1 for d in deals
                                if d["reason"] in ("take_profit", "trailing_take_profit",
                                                   "take_profit_step")),
            "trailing_take_profits": sum(1 for d in deals
                                         if d["reason"] == "trailing_take_profit"),
            "stop_losses": sum(1 for d in deals
                               if d["reason"] in ("stop_loss", "trailing_stop_loss")),
            "trailing_stop_losses": sum(1 for d in deals
                                        if d["reason"] == "trailing_stop_loss"),
            "take_profit_steps_filled": run.steps_filled,
            "realized_pnl": run.realized,
            "unrealized_pnl": run.unrealized(last_close),
            "fees_closed_deals": sum((d["fees"] for d in deals), ZERO),
            "win_rate": Decimal(wins) / Decimal(len(deals)) if deals else None,
            "max_safety_orders_used": max((d["safety_orders"] for d in deals), default=0),
            "max_drawdown": run.max_drawdown,
            "max_capital_committed": run.max_committed,
            "orders_rejected": run.rejected,
            "bot_stopped": run.stopped,
            "deals": deals,
            "market_change": candles[-1][4] / candles[0][4] - 1 if candles else None,
            "avg_deal_seconds": (sum((d["closed"] - d["opened"]) // 1000 for d in deals)
                                 // len(deals)) if deals else None,
            "longest_deal_seconds": max(((d["closed"] - d["opened"]) // 1000 for d in deals),
                                        default=None),
            "open_deal": None if run.deal is None else {
                "opened": run.deal.opened, "entry": run.deal.entry,
                "avg_entry": run.deal.avg(), "safety_orders": run.deal.safety_filled,
                "units": run.deal.units, "sells": run.deal.sells,
            },
            "equity": run.equity,
        }
