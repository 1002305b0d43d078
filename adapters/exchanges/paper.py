"""PaperExchange: a simulated spot venue for one pair. Same port as a real exchange.

Orders fill at the *current* price when they are crossed: a market or marketable order at
once, a resting order when the market moves to it (``move_to``). A simulated market walks
each candle's path and stops at every resting order's price, so a resting order fills at
its own price, or at the open when the market gapped through it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from decimal import Decimal
from typing import NamedTuple

from domain.errors import DomainError
from domain.fees import proportional_fee
from domain.money import ONE, ZERO, to_decimal
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import (
    Balance,
    Exchange,
    ExchangeOrder,
    MarketRules,
    OrderRequest,
    OrderUpdateListener,
    PriceWatcher,
    Trade,
)

DEFAULT_FEE_RATE = Decimal("0.001")

# Finished orders (filled, cancelled, rejected) a venue still answers about, newest kept.
# WHY a window and not every order: a paper server runs for months and its bots finish
# millions of orders; the ones asked about again are asked within the step that ended them
# (a cancel racing the fill, a deal closing cancels its resting orders, the same request
# twice in a step). An order is never placed twice on a request long forgotten: its client
# id is the id of an Order already in the log (engine: ``Order.submit`` then one
# ``create_order``), and a restarted venue only ever knew its resting orders.
RECENT_FINISHED_ORDERS = 1_000


class _Resting(NamedTuple):
    exchange_order_id: str
    request: OrderRequest
    locked: Decimal  # quote for buys, base for sells


class PaperExchange(Exchange):
    """``quote_balance=None`` means an unlimited quote balance: nothing is refused for funds
    (free quote may go negative), which is what a backtest measuring capital needs."""

    def __init__(
        self,
        pair: str,
        *,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        quote_balance: Decimal | None = None,
        base_balance: Decimal = ZERO,
    ):
        self.pair = pair
        self.base, self.quote = pair.split("/")
        self.fee_rate = to_decimal(fee_rate, "fee_rate")
        if not ZERO <= self.fee_rate < ONE:
            raise DomainError("must be between 0 and 1", code="OUT_OF_RANGE", field="fee_rate")
        self.unlimited = quote_balance is None
        start = to_decimal(quote_balance or ZERO, "balance")
        self.free = {self.quote: start, self.base: base_balance}
        self.locked = {self.quote: ZERO, self.base: ZERO}
        self._holders = {self.quote: 0, self.base: 0}  # resting orders locking each asset
        self.price: Decimal | None = None
        self.listener: OrderUpdateListener | None = None
        self._resting: dict[str, _Resting] = {}
        self._levels = (_Levels(), _Levels())  # of _resting: falls fill them, rises fill them
        self._orders: dict[str, ExchangeOrder] = {}  # resting, by exchange order id
        self._finished: dict[str, ExchangeOrder] = {}  # the newest finished, oldest first
        # Base units each position (a deal) holds: changed by its fills only, added up fill
        # by fill in the order the deal adds them, so they equal the deal's own units to the
        # last digit, and a sell of all it holds leaves exactly zero (it is forgotten then).
        # The account's balance is one 28-digit sum over every position and rounds
        # differently: a position's exit is checked against what the position holds.
        self._positions: dict[str, Decimal] = {}
        # What each position's resting sells lock, by exchange order id: taken from what it
        # holds only when a sell is checked. Taken out of the holding when a sell rested and
        # added back when it was cancelled, 28-digit rounding left it one digit off: dust
        # kept the position alive, or its exit of all the deal held was refused.
        self._position_sells: dict[str, dict[str, Decimal]] = {}

    # --- the port -------------------------------------------------------------------------

    def create_order(self, request: OrderRequest) -> ExchangeOrder:
        # Named after the client's id: unique, and the same again when a run is replayed.
        exchange_id = f"paper-{request.client_order_id}"
        known = self._known(exchange_id)
        if known is not None:
            return known  # a retried request places nothing twice
        problem = self._refusal(request)
        if problem:
            return self._remember(
                ExchangeOrder(exchange_id, request.client_order_id, OrderStatus.REJECTED,
                              reason=problem)
            )
        if self._crossed(request, self.price):
            trade = self._execute(exchange_id, request, self.price, lock=ZERO)
            return self._remember(
                ExchangeOrder(exchange_id, request.client_order_id, OrderStatus.FILLED, (trade,))
            )
        self._hold(exchange_id, request)
        return self._remember(
            ExchangeOrder(exchange_id, request.client_order_id, OrderStatus.ACCEPTED)
        )

    def cancel_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder:
        resting = self._resting.pop(exchange_order_id, None)
        self._no_longer_rests(resting)
        order = self.fetch_order(exchange_order_id, pair)
        if resting is None:
            return order  # already filled or cancelled: report its final state
        self._release(resting)
        return self._remember(ExchangeOrder(order.exchange_order_id, order.client_order_id,
                                            OrderStatus.CANCELLED, order.trades, "cancelled"))

    def fetch_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder:
        order = self._known(exchange_order_id)
        if order is None:
            raise DomainError(f"no order {exchange_order_id}", code="ORDER_NOT_FOUND")
        return order

    def fetch_balance(self) -> dict[str, Balance]:
        return {asset: Balance(self.free[asset], self.locked[asset]) for asset in self.free}

    def join_wallet(self, other: PaperExchange) -> None:
        """Share ``other``'s balances: one paper account trading several pairs holds one
        balance per asset (a USDT deposit counts once, whichever pair spends it)."""
        self.free, self.locked, self._holders = other.free, other.locked, other._holders
        for asset in (self.base, self.quote):
            self.free.setdefault(asset, ZERO)
            self.locked.setdefault(asset, ZERO)
            self._holders.setdefault(asset, 0)

    def add_balance(self, asset: str, amount: Decimal) -> None:
        """Free ``amount`` of an asset this venue's pair does not name (another pair's
        base, say) to the account's wallet, when a paper account is rebuilt."""
        self.free[asset] = self.free.get(asset, ZERO) + amount
        self.locked.setdefault(asset, ZERO)
        self._holders.setdefault(asset, 0)

    def fetch_order_by_client_id(self, client_order_id: str, pair: str) -> ExchangeOrder | None:
        return self._known(f"paper-{client_order_id}")

    def fetch_open_orders(self, pair: str | None = None) -> list[ExchangeOrder]:
        return [self._orders[r.exchange_order_id] for r in self._resting.values()
                if pair is None or r.request.pair == pair]

    def market_rules(self, pair: str) -> MarketRules | None:
        return None  # the paper venue trades any amount at any price

    def restore_position(self, position: str, units: Decimal) -> None:
        """Say what a position held when the process stopped (its fills are already in the
        balance this venue was built with); before its resting orders are restored (its
        sells among them lock part of it again)."""
        if units:
            self._positions[position] = units

    def restore_resting(self, request: OrderRequest, exchange_order_id: str) -> None:
        """Put back an order that was resting when the process stopped (its funds are
        locked again), so a restarted bot carries on without placing anything twice."""
        self._hold(exchange_order_id, request)
        self._remember(ExchangeOrder(exchange_order_id, request.client_order_id,
                                     OrderStatus.ACCEPTED))

    # --- the simulation -------------------------------------------------------------------

    def move_to(self, price: Decimal) -> None:
        """The market trades at ``price``: fill every resting order it crosses, buys first
        (highest, i.e. shallowest, first), then stops, then sell limits."""
        self.price = price
        below, above = self._resting_levels()
        if (not below or price > below[-1]) and (not above or price < above[0]):
            return  # nothing rests where the price is (orders without a price never rest)
        # Looked for and ordered once: what a fill's listener does can end resting orders
        # (a closed deal cancels its ladder) but not rest one crossed at this price (one
        # placed crossed fills at once), so the next to fill is always the next of these
        # still resting (the sort is stable: of equal priority the first rested, as min()
        # over the resting orders gave it). WHY: the book was scanned again and its
        # crossed orders ranked again after each fill: a stop where ten bots' safety
        # orders fill did it ten times (a falling candle's wave of fills).
        crossed = sorted([r for r in self._resting.values() if self._crossed(r.request, price)],
                         key=_fill_priority)
        book = self._resting
        for resting in crossed:
            if book.get(resting.exchange_order_id) is not resting:
                continue  # ended by an earlier fill's listener
            del book[resting.exchange_order_id]
            self._no_longer_rests(resting)
            trade = self._execute(resting.exchange_order_id, resting.request, price,
                                  lock=resting.locked)
            before = self._orders[resting.exchange_order_id]  # (resting: ACCEPTED)
            update = ExchangeOrder(before.exchange_order_id, before.client_order_id,
                                   OrderStatus.FILLED, (trade,), before.reason)
            self._remember(update)
            if self.listener is not None:
                self.listener.on_order_update(update)

    def walk_candle(
        self, o: Decimal, h: Decimal, low: Decimal, c: Decimal, watcher: PriceWatcher
    ) -> None:
        """Trade through one candle: open → low → high → close when it closed up, else
        open → high → low → close, stopping at every price where a resting order or one of
        the watcher's levels lies, so each fills at its own price (or at the open on a gap).
        A watcher that follows new highs (``high_watch``) also sees every rising leg's end."""
        path = (low, h, c) if c >= o else (h, low, c)
        levels = _levels_reader(watcher)
        self._arrive(o, watcher)
        current = o
        for target in path:
            while (level := self._next_level(current, target, levels)) is not None:
                current = level
                self._arrive(level, watcher)
            current = target
        self.price = c

    def _arrive(self, price: Decimal, watcher: PriceWatcher) -> None:
        self.listener = watcher
        self.move_to(price)
        watcher.on_price(price)

    def _next_level(self, current: Decimal, target: Decimal, levels: _Reader) -> Decimal | None:
        """The next price to stop at from ``current`` towards ``target``: the nearest
        resting order's or watcher's level on the way (of equal ones the resting order's,
        as ``max``/``min`` over them in that order keep it), else None. Asked at every stop
        of every market a candle walks: no lists made."""
        below, above, low_watch, high_watch = levels()
        if target < current:
            hit = self._levels[0].highest_under(current)
            if hit is not None and not target <= hit < current:
                hit = None
            if below is not None and target <= below < current and (
                    hit is None or below > hit):
                hit = below
            if hit is None and low_watch is not None:
                hit = target  # it follows new lows: each falling leg's end
            return hit
        if target > current:
            hit = self._levels[1].lowest_over(current)
            if hit is not None and not current < hit <= target:
                hit = None
            if above is not None and current < above <= target and (
                    hit is None or above < hit):
                hit = above
            if hit is None and high_watch is not None:
                hit = target  # it follows new highs: each rising leg's end
            return hit
        return None

    def trigger_band(self, watcher: PriceWatcher) -> tuple[Decimal | None, Decimal | None]:
        """The highest price at which a fall, and the lowest at which a rise, would make
        anything happen: candles that stay strictly inside the band change nothing."""
        below, above, low_watch, high_watch = _levels_reader(watcher)()
        # the highest fall and the lowest rise; of equal ones the first named (as max()
        # and min() over them in this order keep it: a level becomes a fill's price)
        fall = self._levels[0].highest()
        if below is not None and (fall is None or below > fall):
            fall = below
        if low_watch is not None and (fall is None or low_watch > fall):
            fall = low_watch
        rise = self._levels[1].lowest()
        if above is not None and (rise is None or above < rise):
            rise = above
        if high_watch is not None and (rise is None or high_watch < rise):
            rise = high_watch
        return fall, rise

    def levels_below(self) -> list[Decimal]:
        """Prices at which a falling market fills a resting order (buy limits, sell stops),
        lowest first (do not change the list)."""
        return self._levels[0].prices

    def levels_above(self) -> list[Decimal]:
        return self._levels[1].prices

    def _resting_levels(self) -> tuple[list[Decimal], list[Decimal]]:
        return self._levels[0].prices, self._levels[1].prices

    def _rests(self, exchange_id: str, request: OrderRequest) -> None:
        if request.price is not None:  # (orders without a price never rest)
            self._levels[0 if _triggers_on_fall(request) else 1].add(exchange_id, request.price)

    def _no_longer_rests(self, resting: _Resting | None) -> None:
        if resting is not None and resting.request.price is not None:
            request = resting.request
            self._levels[0 if _triggers_on_fall(request) else 1].remove(resting.exchange_order_id)

    # --- bookkeeping ----------------------------------------------------------------------

    def _refusal(self, request: OrderRequest) -> str | None:
        if request.pair != self.pair:
            return f"this paper account trades {self.pair}, not {request.pair}"
        if request.type is not OrderType.MARKET and request.price is None:
            return f"a {request.type} order needs a price"
        if self.price is None and (request.type is OrderType.MARKET):
            return "no market price yet"
        if request.side is OrderSide.BUY:
            if not self.unlimited and (need := self._lock_for(request)) > self.free[self.quote]:
                return (f"insufficient funds: needs {need} {self.quote} "
                        f"(with fee), {self.free[self.quote]} free")
        elif request.amount > (held := self._sellable(request)):
            return f"insufficient funds: needs {request.amount} {self.base}, {held} free"
        return None

    def _sellable(self, request: OrderRequest) -> Decimal:
        """What a sell may sell: what its position holds less what its resting sells lock,
        else the account's free base."""
        held = self._positions.get(request.position) if request.position is not None else None
        if held is None:
            return self.free[self.base]
        resting = self._position_sells.get(request.position)
        return held - sum(resting.values()) if resting else held

    def _position_sell_ends(self, exchange_id: str, request: OrderRequest) -> None:
        """A position's resting sell no longer rests (filled or cancelled)."""
        resting = self._position_sells.get(request.position or "")
        if resting is not None and resting.pop(exchange_id, None) is not None and not resting:
            del self._position_sells[request.position]

    def _position_changes(self, request: OrderRequest, units: Decimal) -> None:
        """``units`` (negative: taken out) of the order's position, if it has one."""
        position = request.position
        if position is None or (units < 0 and position not in self._positions):
            return  # not a position's, or one that bought nothing here (sold from the balance)
        left = self._positions.get(position, ZERO) + units
        if left:
            self._positions[position] = left
        else:
            del self._positions[position]  # sold out: the deal is over

    def _lock_for(self, request: OrderRequest) -> Decimal:
        if request.side is OrderSide.SELL:
            return request.amount
        price = request.price if request.type is OrderType.LIMIT else self.price
        return request.amount * price * (ONE + self.fee_rate)

    @staticmethod
    def _crossed(request: OrderRequest, price: Decimal | None) -> bool:
        if price is None:
            return False
        if request.type is OrderType.MARKET:
            return True
        if request.side is OrderSide.BUY:
            return price >= request.price if request.type is OrderType.STOP else (
                price <= request.price)
        return price <= request.price if request.type is OrderType.STOP else (
            price >= request.price)

    def _execute(self, exchange_id: str, request: OrderRequest, price: Decimal,
                 lock: Decimal) -> Trade:
        notional = request.amount * price
        fee = proportional_fee(request.amount, price, self.fee_rate)  # = notional × rate
        if request.side is OrderSide.BUY:
            self.locked[self.quote] -= lock
            self.free[self.quote] += lock - notional - fee
            self.free[self.base] += request.amount
            self._position_changes(request, request.amount)
            if lock:
                self._unheld(self.quote)
        else:
            self.locked[self.base] -= lock
            self.free[self.base] += lock - request.amount
            self.free[self.quote] += notional - fee
            if lock:
                self._unheld(self.base)
                self._position_sell_ends(exchange_id, request)
            self._position_changes(request, -request.amount)
        return Trade(f"{exchange_id}-t1", price, request.amount, fee, self.quote)

    def _release(self, resting: _Resting) -> None:
        asset = self.quote if resting.request.side is OrderSide.BUY else self.base
        self.locked[asset] -= resting.locked
        self.free[asset] += resting.locked
        if asset == self.base:
            self._position_sell_ends(resting.exchange_order_id, resting.request)
        self._unheld(asset)

    def _hold(self, exchange_id: str, request: OrderRequest) -> None:
        lock = self._lock_for(request)
        asset = self.quote if request.side is OrderSide.BUY else self.base
        self.free[asset] -= lock
        self.locked[asset] += lock
        if asset == self.base and request.position in self._positions:
            self._position_sells.setdefault(request.position, {})[exchange_id] = lock
        self._holders[asset] += 1
        self._resting[exchange_id] = _Resting(exchange_id, request, lock)
        self._rests(exchange_id, request)

    def _unheld(self, asset: str) -> None:
        """One order less locks ``asset``. With none left its locked balance is exactly
        zero: sums of 28-digit locks can round, and what rounding left belongs to free."""
        self._holders[asset] -= 1
        if not self._holders[asset] and self.locked[asset]:
            self.free[asset] += self.locked[asset]
            self.locked[asset] = ZERO

    def _remember(self, order: ExchangeOrder) -> ExchangeOrder:
        exchange_id = order.exchange_order_id
        if order.status is OrderStatus.ACCEPTED:
            self._orders[exchange_id] = order
            return order
        self._orders.pop(exchange_id, None)  # it rests no more
        self._finished[exchange_id] = order
        if len(self._finished) > RECENT_FINISHED_ORDERS:
            del self._finished[next(iter(self._finished))]  # the oldest
        return order

    def _known(self, exchange_id: str) -> ExchangeOrder | None:
        order = self._orders.get(exchange_id)
        return order if order is not None else self._finished.get(exchange_id)

    def remembered(self) -> int:
        """How many orders this venue holds in memory (resting and recently finished)."""
        return len(self._orders) + len(self._finished)

    def positions_kept(self) -> int:
        """How many positions this venue keeps what they hold of (a sold-out one is
        forgotten: a paper server finishes millions of deals)."""
        return len(self._positions)


_Reader = Callable[[], tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]]


def _levels_reader(watcher: PriceWatcher) -> _Reader:
    """What reads ``(below, above, low_watch, high_watch)`` of ``watcher``: its own
    ``watch_levels`` when it has one (all four in one pass over a market's bots), else its
    ``trigger_levels`` and optional watches asked one by one."""
    reader = getattr(watcher, "watch_levels", None)
    if reader is not None:
        return reader

    def one_by_one() -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
        below, above = watcher.trigger_levels()
        return below, above, _watch(watcher, "low_watch"), _high_watch(watcher)

    return one_by_one


def _high_watch(watcher: PriceWatcher) -> Decimal | None:
    """The watcher's highest followed (a trailing take profit), if it follows one."""
    high_watch = getattr(watcher, "high_watch", None)
    return None if high_watch is None else high_watch()


def _watch(watcher: PriceWatcher, name: str) -> Decimal | None:
    """The watcher's lowest followed (``low_watch``: a buy trailing stop), if any."""
    watch = getattr(watcher, name, None)
    return None if watch is None else watch()


def _triggers_on_fall(request: OrderRequest) -> bool:
    buy = request.side is OrderSide.BUY
    return buy != (request.type is OrderType.STOP)


def _fill_priority(resting: _Resting) -> tuple[int, Decimal]:
    request = resting.request
    if request.side is OrderSide.BUY:
        return (0, -(request.price or ZERO))
    return (1 if request.type is OrderType.STOP else 2, ZERO)


class _Levels:
    """The prices of one side's resting orders, kept sorted as orders rest and end: a
    quiet candle after a busy one measures the band of every market the busy one touched,
    and rebuilding these from every resting order cost most of it (10,000 bots).

    Equal prices may be written differently (``1.0``, ``1.00``), and a level becomes a
    fill's price, so of equal levels the one that rested first is the one given, as a
    ``max``/``min`` over the orders in the order they rested gives it: each price is
    sorted with the number of its resting (``_keys``), never by its value alone."""

    def __init__(self) -> None:
        self.prices: list[Decimal] = []
        self._keys: list[tuple[Decimal, int]] = []  # (price, count): in step with prices
        self._key_of: dict[str, tuple[Decimal, int]] = {}  # by exchange order id
        self._count = 0

    def add(self, exchange_id: str, price: Decimal) -> None:
        old = self._key_of.get(exchange_id)
        if old is not None:  # rested again (a restore): keeps its place, as a dict key does
            self.remove(exchange_id)
        key = (price, self._count if old is None else old[1])
        self._count += 1
        at = bisect_right(self._keys, key)
        self._keys.insert(at, key)
        self.prices.insert(at, price)
        self._key_of[exchange_id] = key

    def remove(self, exchange_id: str) -> None:
        key = self._key_of.pop(exchange_id)
        at = bisect_left(self._keys, key)
        del self._keys[at]
        del self.prices[at]

    def highest(self) -> Decimal | None:
        return self._first_equal(len(self.prices) - 1)

    def lowest(self) -> Decimal | None:
        return self._first_equal(0)

    def highest_under(self, price: Decimal) -> Decimal | None:
        return self._first_equal(bisect_left(self.prices, price) - 1)

    def lowest_over(self, price: Decimal) -> Decimal | None:
        return self._first_equal(bisect_right(self.prices, price))

    def _first_equal(self, at: int) -> Decimal | None:
        """The first rested of the prices equal to the one at ``at`` (None out of range)."""
        if not 0 <= at < len(self.prices):
            return None
        return self.prices[bisect_left(self.prices, self.prices[at])]
