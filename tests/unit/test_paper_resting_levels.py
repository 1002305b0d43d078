"""The paper venue's resting levels, kept sorted as orders rest and end (not rebuilt from
every resting order): the band a candle must reach and the prices a walk stops at (a
resting order's fill price) are those a plain scan of the resting orders, in the order
they rested, gives - to the digit, when equal prices are written differently."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.exchanges.paper import PaperExchange
from domain.orders import OrderSide, OrderType
from domain.ports import OrderRequest

# equal values written differently: a fill's price shows which order's level was taken
PRICES = ["98", "98.0", "99", "99.00", "99.0", "100", "101.0", "101", "102.00"]
KINDS = [(OrderSide.BUY, OrderType.LIMIT), (OrderSide.SELL, OrderType.LIMIT),
         (OrderSide.SELL, OrderType.STOP), (OrderSide.BUY, OrderType.STOP)]


class Watcher:
    """Holds no level of its own; records every price the walk stops at, as written."""

    def __init__(self) -> None:
        self.stops: list[str] = []

    def trigger_levels(self):
        return None, None

    def on_price(self, price: Decimal) -> None:
        self.stops.append(str(price))

    def on_order_update(self, update) -> None:
        pass


def falls_to_fill(request: OrderRequest) -> bool:
    return (request.side is OrderSide.BUY) == (request.type is OrderType.LIMIT)


def crossed(request: OrderRequest, price: Decimal) -> bool:
    return price <= request.price if falls_to_fill(request) else price >= request.price


def reference_band(resting: dict[str, OrderRequest]) -> tuple[str | None, str | None]:
    falls = [r.price for r in resting.values() if falls_to_fill(r)]
    rises = [r.price for r in resting.values() if not falls_to_fill(r)]
    return (str(max(falls)) if falls else None, str(min(rises)) if rises else None)


def reference_walk(resting: dict[str, OrderRequest], o, h, low, c) -> list[str]:
    """The stops of a walk over ``resting`` (filled as it goes, in the order they rested)."""
    stops: list[str] = []

    def arrive(price: Decimal) -> None:
        stops.append(str(price))
        for key in [k for k, r in resting.items() if crossed(r, price)]:
            del resting[key]

    arrive(o)
    current = o
    for target in ((low, h, c) if c >= o else (h, low, c)):
        while True:
            if target < current:
                hits = [r.price for r in resting.values()
                        if falls_to_fill(r) and target <= r.price < current]
                level = max(hits, default=None)
            else:
                hits = [r.price for r in resting.values()
                        if not falls_to_fill(r) and current < r.price <= target]
                level = min(hits, default=None)
            if level is None:
                break
            current = level
            arrive(level)
        current = target
    return stops


place = st.tuples(st.just("place"), st.sampled_from(KINDS), st.sampled_from(PRICES))
cancel = st.tuples(st.just("cancel"), st.integers(0, 30))
candle = st.tuples(st.just("walk"), st.lists(st.sampled_from(PRICES), min_size=4,
                                             max_size=4))


BUY_LIMIT = (OrderSide.BUY, OrderType.LIMIT)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(place, place, cancel, candle), max_size=40))
# the last of three equal levels ends: the first rested (99.0) is still the band's
@example([("place", BUY_LIMIT, "99.0"), ("place", BUY_LIMIT, "99"),
          ("place", BUY_LIMIT, "99.0"), ("cancel", 2)])
def test_band_and_walk_stops_equal_a_scan_of_the_resting_orders(steps):
    venue = PaperExchange("BTC/USDT", quote_balance=None, base_balance=Decimal(1000))
    venue.price = Decimal(100)
    resting: dict[str, OrderRequest] = {}  # the reference: by exchange id, as they rested
    watcher = Watcher()
    for n, step in enumerate(steps):
        if step[0] == "place":
            (side, kind), price = step[1], Decimal(step[2])
            request = OrderRequest(f"o{n}", "BTC/USDT", side, kind, Decimal(1), price)
            if crossed(request, venue.price):
                continue  # would fill at once: nothing rests
            placed = venue.create_order(request)
            resting[placed.exchange_order_id] = request
        elif step[0] == "cancel" and resting:
            key = list(resting)[step[1] % len(resting)]
            venue.cancel_order(key, "BTC/USDT")
            del resting[key]
        elif step[0] == "walk":
            o, h, low, c = (Decimal(p) for p in step[1])
            h, low = max(o, h, low, c), min(o, h, low, c)
            watcher.stops.clear()
            venue.walk_candle(o, h, low, c, watcher)
            assert watcher.stops == reference_walk(resting, o, h, low, c)
        band = venue.trigger_band(watcher)
        assert tuple(None if p is None else str(p) for p in band) == reference_band(resting)
        assert sorted(o.exchange_order_id for o in venue.fetch_open_orders()) == sorted(resting)


def venue_resting(orders) -> tuple[PaperExchange, dict[str, OrderRequest]]:
    """A venue at 100 with ``orders`` ((side, type), price) placed; those that rest (the
    others would fill at once), by exchange id, in the order they rested."""
    venue = PaperExchange("BTC/USDT", quote_balance=None, base_balance=Decimal(1000))
    venue.price = Decimal(100)
    resting: dict[str, OrderRequest] = {}
    for n, ((side, kind), price) in enumerate(orders):
        request = OrderRequest(f"o{n}", "BTC/USDT", side, kind, Decimal(1), Decimal(price))
        if not crossed(request, venue.price):
            resting[venue.create_order(request).exchange_order_id] = request
    return venue, resting


class LevelWatcher(Watcher):
    """A watcher with levels of its own (a bot's stop and take profit) and, maybe, the
    trailing watches: its levels and the venue's resting ones share the walk's stops."""

    def __init__(self, below, above, low_watch, high_watch) -> None:
        super().__init__()
        self.levels = below, above, low_watch, high_watch

    def watch_levels(self):
        return self.levels


def reference_stop(resting, current, target, levels):
    """The next stop as ``max``/``min`` over [the resting level, the watcher's level]
    (and the leg's end when a watch follows it) give it: of equal ones the first."""
    below, above, low_watch, high_watch = levels
    if target < current:
        hits = [r.price for r in resting.values() if falls_to_fill(r)
                and target <= r.price < current]
        hits = [p for p in (max(hits, default=None), below)
                if p is not None and target <= p < current]
        return max(hits + [target] * (low_watch is not None), default=None)
    if target > current:
        hits = [r.price for r in resting.values() if not falls_to_fill(r)
                and current < r.price <= target]
        hits = [p for p in (min(hits, default=None), above)
                if p is not None and current < p <= target]
        return min(hits + [target] * (high_watch is not None), default=None)
    return None


maybe_price = st.one_of(st.none(), st.sampled_from(PRICES))


@settings(max_examples=300, deadline=None)
@given(orders=st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(PRICES)),
                       max_size=8),
       levels=st.tuples(maybe_price, maybe_price, maybe_price, maybe_price),
       candle=st.lists(st.sampled_from(PRICES), min_size=4, max_size=4))
# a resting buy and the watcher's level equal but written differently: the resting one's
@example(orders=[(BUY_LIMIT, "99.0")], levels=("99.00", None, None, None),
         candle=["100", "101", "98", "98.0"])
def test_stops_and_band_with_a_watchers_levels_keep_the_first_of_equal_prices(
        orders, levels, candle):
    venue, resting = venue_resting(orders)
    watch = tuple(None if p is None else Decimal(p) for p in levels)
    watcher = LevelWatcher(*watch)
    falls = [p for p in (max((r.price for r in resting.values() if falls_to_fill(r)),
                             default=None), watch[0], watch[2]) if p is not None]
    rises = [p for p in (min((r.price for r in resting.values() if not falls_to_fill(r)),
                             default=None), watch[1], watch[3]) if p is not None]
    band = venue.trigger_band(watcher)
    assert tuple(None if p is None else str(p) for p in band) == (
        None if not falls else str(max(falls)), None if not rises else str(min(rises)))
    o, h, low, c = (Decimal(p) for p in candle)
    h, low = max(o, h, low, c), min(o, h, low, c)
    expected, current = [str(o)], o
    for key in [k for k, r in resting.items() if crossed(r, o)]:
        del resting[key]
    for target in ((low, h, c) if c >= o else (h, low, c)):
        while (level := reference_stop(resting, current, target, watch)) is not None:
            expected.append(str(level))
            for key in [k for k, r in resting.items() if crossed(r, level)]:
                del resting[key]
            current = level
        current = target
    venue.walk_candle(o, h, low, c, watcher)
    assert watcher.stops == expected


def fill_priority(request: OrderRequest) -> tuple[int, Decimal]:
    if request.side is OrderSide.BUY:
        return 0, -request.price
    return (1 if request.type is OrderType.STOP else 2), Decimal(0)


class Reacting(Watcher):
    """At each fill, what a bot might do meanwhile: cancel one of the orders still resting
    (a closed deal's ladder) and place one (filled at once when the price crosses it)."""

    def __init__(self, venue: PaperExchange, reactions) -> None:
        super().__init__()
        self.venue, self.reactions, self.fills = venue, list(reactions), []

    def on_order_update(self, update) -> None:
        self.fills.append(update.client_order_id)
        react(self.reactions, len(self.fills), [o.exchange_order_id for o in
                                                 self.venue.fetch_open_orders()],
              lambda key: self.venue.cancel_order(key, "BTC/USDT"),
              self.venue.create_order)


def react(reactions, n, resting_keys, cancel, place) -> None:
    if n > len(reactions):
        return
    cancelled, placed = reactions[n - 1]
    if cancelled is not None and resting_keys:
        cancel(resting_keys[cancelled % len(resting_keys)])
    if placed is not None:
        (side, kind), price = placed
        place(OrderRequest(f"r{n}", "BTC/USDT", side, kind, Decimal(1), Decimal(price)))


def reference_fills(resting: dict[str, OrderRequest], price: Decimal, reactions) -> list[str]:
    """The resting orders ``price`` crosses, filled one at a time, each the first of the
    highest priority among those a scan of what still rests finds after the last fill's
    reactions."""
    fills: list[str] = []

    def place(request: OrderRequest) -> None:
        if not crossed(request, price):
            resting[f"paper-{request.client_order_id}"] = request

    while hits := [k for k, r in resting.items() if crossed(r, price)]:
        key = min(hits, key=lambda k: fill_priority(resting[k]))
        fills.append(resting.pop(key).client_order_id)
        react(reactions, len(fills), list(resting), resting.pop, place)
    return fills


reaction = st.tuples(st.none() | st.integers(0, 30),
                     st.none() | st.tuples(st.sampled_from(KINDS), st.sampled_from(PRICES)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(PRICES)), max_size=12),
       st.sampled_from(PRICES), st.lists(reaction, max_size=8))
def test_a_price_fills_what_still_rests_in_priority_order_whatever_each_fill_does(
        orders, price, reactions):
    """Buys first (highest first), then stops, then sell limits, of equal ones the first
    rested; an order a fill's listener cancels is not filled, and one it places crossed
    fills at once (it never rests)."""
    venue, resting = venue_resting(orders)
    watcher = Reacting(venue, reactions)
    venue.listener = watcher
    venue.move_to(Decimal(price))
    assert watcher.fills == reference_fills(resting, Decimal(price), reactions)
    assert sorted(o.exchange_order_id for o in venue.fetch_open_orders()) == sorted(resting)
