"""Positions and their exits, decided by the PositionDesk on a paper venue walking candles:
an OCO's legs (one filling cancels the other, in the same step), the candle path rules,
stop limits, trailing stops both ways with activation, and replay; hypothesis for the
trailing level maths (it never moves the unfavourable way)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.clock import SequentialIds
from adapters.exchanges.paper import PaperExchange
from application.position_desk import PositionDesk
from domain.errors import DomainError
from domain.orders import OrderSide, OrderType
from domain.positions import ExitKind, ExitStatus, Position, PositionExit, PositionStatus
from domain.trailing import check_oco_prices, check_trail, next_extreme, trail_level
from tests.stubs import a_cause, replay, state_of

D = Decimal
SELL, BUY = OrderSide.SELL, OrderSide.BUY


class Market:
    """A paper venue at 100 with 10,000 USDT, no fees, and a desk holding one position of
    1 BTC bought at market."""

    def __init__(self, units: str = "1"):
        self.venue = PaperExchange("BTC/USDT", fee_rate=D(0), quote_balance=D(10000))
        self.venue.price = D(100)
        self.desk = PositionDesk(self.venue, SequentialIds("positions"))
        self.minute = 0
        self.begin()
        self.position = Position.open(self.desk.ids.new_id(), a_cause(), owner_id="u",
                                      exchange_account_id="a", pair="BTC/USDT",
                                      entry="market")
        self.desk.positions[self.position.id] = self.position
        self.desk.place(self.position, BUY, OrderType.MARKET, D(units), None, None, "entry")

    def begin(self) -> None:
        self.minute += 1
        self.desk.begin_step(a_cause(self.minute, correlation_id=f"step-{self.minute}"))

    def attach(self, kind: ExitKind, side: OrderSide = SELL, amount: str = "1",
               **levels: str) -> PositionExit:
        group = PositionExit.attach(
            self.desk.ids.new_id(), a_cause(self.minute), position_id=self.position.id,
            owner_id="u", kind=kind, side=side, amount=D(amount),
            **{k: D(v) for k, v in levels.items()})
        self.desk.exits[group.id] = group
        if kind is ExitKind.OCO:
            self.desk.place(self.position, SELL, OrderType.LIMIT, D(amount),
                            group.take_profit_price, group.id, "take_profit")
        else:
            group.follow(a_cause(self.minute), self.venue.price)
        return group

    def candle(self, o: str, h: str, low: str, c: str) -> None:
        self.begin()
        self.venue.walk_candle(D(o), D(h), D(low), D(c), self.desk)

    def events(self, aggregate) -> list[str]:
        return [type(e).__name__ for e in aggregate.collect_events()]


def oco(market: Market, amount: str = "1", **levels: str) -> PositionExit:
    prices = {"take_profit_price": "110", "stop_price": "90", **levels}
    return market.attach(ExitKind.OCO, amount=amount, **prices)


# --- OCO ----------------------------------------------------------------------------------


def test_a_take_profit_fill_cancels_the_stop_in_the_same_step():
    market = Market()
    group = oco(market)
    market.candle("100", "111", "99", "105")
    assert (group.status, group.leg, group.fill_price) == (ExitStatus.FILLED, "take_profit",
                                                           D(110))
    events = group.collect_events()
    assert [type(e).__name__ for e in events] == ["Attached", "LegFilled", "LegCancelled"]
    assert events[1].correlation_id == events[2].correlation_id == "step-2"  # one step
    assert market.position.status is PositionStatus.CLOSED
    assert market.position.proceeds == D(110) and market.position.realized_pnl == D(10)


def test_a_stop_reached_cancels_the_resting_take_profit_then_sells_at_the_stop():
    market = Market()
    group = oco(market)
    market.candle("100", "101", "85", "88")  # down: open, high, then the low crosses 90
    assert (group.status, group.leg, group.fill_price) == (ExitStatus.FILLED, "stop", D(90))
    assert market.events(group) == ["Attached", "LegCancelled", "Triggered", "LegFilled"]
    assert market.venue.fetch_open_orders() == []
    assert market.position.units == 0 and market.position.proceeds == D(90)


def test_a_gap_below_the_stop_sells_at_the_open():
    market = Market()
    group = oco(market)
    market.candle("80", "82", "79", "81")
    assert (group.leg, group.fill_price) == ("stop", D(80))


@pytest.mark.parametrize(("candle", "leg"), [
    (("100", "115", "85", "105"), "stop"),  # closed up: open → low → high → close
    (("100", "115", "85", "95"), "take_profit"),  # closed down: open → high → low → close
])
def test_the_candle_path_decides_which_leg_fills_first(candle, leg):
    market = Market()
    group = oco(market)
    market.candle(*candle)
    assert group.leg == leg and group.status is ExitStatus.FILLED


def test_a_stop_limit_rests_when_the_market_gaps_below_it_then_fills_at_its_price():
    market = Market()
    group = oco(market, stop_limit_price="89")
    market.candle("100", "100", "88", "88")  # reaches 90 on the way: a limit sell at 89
    assert group.status is ExitStatus.FILLED and group.fill_price == D(90)  # marketable
    market = Market()
    group = oco(market, stop_limit_price="89")
    market.candle("85", "86", "84", "85")  # opens below the limit: the sell rests at 89
    assert group.status is ExitStatus.TRIGGERED and market.position.units == 1
    market.candle("85", "89.5", "85", "89")
    assert group.status is ExitStatus.FILLED and group.fill_price == D(89)


def test_an_oco_for_part_of_a_position_leaves_the_rest_held():
    market = Market(units="2")
    group = oco(market)
    market.candle("100", "120", "100", "119")
    assert group.status is ExitStatus.FILLED
    assert market.position.units == 1 and market.position.status is PositionStatus.OPEN


@pytest.mark.parametrize(("take_profit", "stop", "limit"), [
    ("100", "90", None), ("99", "90", None), ("110", "100", None), ("110", "101", None),
    ("110", "90", "91")])
def test_oco_prices_must_bracket_the_current_price(take_profit, stop, limit):
    with pytest.raises(DomainError) as refused:
        check_oco_prices(D(take_profit), D(stop), limit and D(limit), D(100))
    assert refused.value.code == "OCO_PRICES_ILLOGICAL"


# --- trailing stops -----------------------------------------------------------------------


def test_a_sell_trailing_stop_follows_each_rising_leg_and_sells_at_its_level():
    market = Market()
    group = market.attach(ExitKind.TRAILING_STOP, trail_percent="5")
    assert (group.extreme, group.level) == (D(100), D(95))
    market.candle("100", "120", "99", "118")  # up: the low 99 stays above 95; high 120
    assert (group.extreme, group.level, group.status) == (D(120), D(114), ExitStatus.ACTIVE)
    market.candle("118", "119", "110", "111")  # never above 120: the level stays
    assert group.level == D(114) and group.status is ExitStatus.FILLED
    assert group.fill_price == D(114) and market.position.proceeds == D(114)


def test_a_trailing_amount_is_a_price_distance_and_the_activation_price_waits():
    market = Market()
    group = market.attach(ExitKind.TRAILING_STOP, trail_amount="3", activation_price="105")
    assert group.level is None
    market.candle("100", "104", "99", "103")
    assert group.level is None  # not activated: no level, nothing sells at any price
    market.candle("103", "108", "102", "106")  # up: low 102 first, then 105 activates
    assert (group.extreme, group.level, group.status) == (D(108), D(105), ExitStatus.ACTIVE)
    market.candle("104", "104", "100", "101")
    assert group.fill_price == D(104)  # opened below the level: sold at the open


def test_a_buy_trailing_stop_follows_the_lows_and_buys_on_the_rise():
    market = Market()
    group = market.attach(ExitKind.TRAILING_STOP, side=BUY, amount="0.5", trail_percent="10")
    assert (group.extreme, group.level) == (D(100), D(110))
    market.candle("100", "101", "80", "85")  # down: the low 80 moves the level to 88
    assert (group.extreme, group.level) == (D(80), D(88))
    market.candle("85", "85.5", "78", "85")  # up: 78 first (level 85.8), then 85.5
    assert group.level == D("85.8") and group.status is ExitStatus.ACTIVE
    market.candle("85", "95", "85", "94")
    assert group.fill_price == D("85.8")
    assert market.position.units == D("1.5") and market.position.cost == D(100) + D("42.9")


# --- replay and determinism ---------------------------------------------------------------


def script() -> list:
    market = Market()
    oco(market, amount="0.5", take_profit_price="130", stop_price="80")
    market.attach(ExitKind.TRAILING_STOP, amount="0.5", trail_percent="2")
    for candle in (("100", "110", "99", "109"), ("109", "109", "100", "101")):
        market.candle(*candle)
    return [e for a in market.desk.take_changes() for e in a.collect_events()]


def test_the_same_commands_on_the_same_market_give_the_same_events():
    first, second = script(), script()
    assert [vars(e) for e in first] == [vars(e) for e in second]
    assert any(type(e).__name__ == "LegFilled" for e in first)


def test_a_position_and_its_exit_replay_from_their_events_alone():
    market = Market()
    position = market.position
    group = oco(market)
    market.candle("100", "111", "99", "105")
    events = position.collect_events()
    assert state_of(replay(events)) == state_of(position)
    assert state_of(replay(group.collect_events())) == state_of(group)


def test_a_sell_beyond_the_position_is_refused():
    market = Market()
    with pytest.raises(DomainError) as refused:
        market.position.record_sell(a_cause(), order_id=market.position.id, exit_id=None,
                                    price=D(1), amount=D(2), fee=D(0), reason="close")
    assert refused.value.code == "POSITION_OVERSOLD"


@pytest.mark.parametrize(("pct", "amount", "code"), [
    (None, None, "TRAIL_REQUIRED"), ("1", "1", "TRAIL_REQUIRED"), ("0", None, "OUT_OF_RANGE"),
    ("100", None, "OUT_OF_RANGE"), (None, "100", "OUT_OF_RANGE")])
def test_a_trail_is_one_distance_in_range(pct, amount, code):
    with pytest.raises(DomainError) as refused:
        check_trail(pct and D(pct), amount and D(amount), D(100))
    assert refused.value.code == code


# --- hypothesis: the level never moves the unfavourable way --------------------------------

prices = st.decimals(min_value=D("0.01"), max_value=D(100000), places=2)


@given(side=st.sampled_from([SELL, BUY]), start=prices, path=st.lists(prices, max_size=60),
       pct=st.one_of(st.none(), st.decimals(min_value=D("0.01"), max_value=D("99.99"),
                                             places=2)),
       activation=st.one_of(st.none(), prices))
def test_a_trailing_level_never_moves_against_its_owner(side, start, path, pct, activation):
    group = PositionExit.attach(
        SequentialIds("h").new_id(), a_cause(), position_id=SequentialIds("p").new_id(),
        owner_id="u", kind=ExitKind.TRAILING_STOP, side=side, amount=D(1),
        trail_percent=pct, trail_amount=None if pct else D("0.005"),
        activation_price=activation)
    levels, seen = [], []
    for price in [start, *path]:
        group.follow(a_cause(), price)
        if group.extreme is not None:
            seen.append(price)
            levels.append(group.level)
    favourable = sorted(levels) if side is SELL else sorted(levels, reverse=True)
    assert levels == favourable
    if seen:  # the extreme is the best price since activation, the level its distance
        best = max(seen) if side is SELL else min(seen)
        assert group.extreme == best
        assert group.level == trail_level(side, best, pct, None if pct else D("0.005"))


@given(side=st.sampled_from([SELL, BUY]), prices=st.lists(prices, min_size=1, max_size=40))
def test_the_extreme_is_the_running_best_price(side, prices):
    extreme = prices[0]
    for price in prices[1:]:
        extreme = next_extreme(side, extreme, price)
    assert extreme == (max(prices) if side is SELL else min(prices))


# --- hypothesis: exits on generated markets -----------------------------------------------


@st.composite
def candle_walks(draw) -> list[tuple[str, str, str, str]]:
    """Valid candles (low <= open, close <= high) walking from 100, in cents."""
    price, candles = 10000, []
    for _ in range(draw(st.integers(1, 25))):
        close = max(100, price + draw(st.integers(-800, 800)))
        high = max(price, close) + draw(st.integers(0, 400))
        low = max(1, min(price, close) - draw(st.integers(0, 400)))
        candles.append(tuple(str(D(v) / 100) for v in (price, high, low, close)))
        price = max(100, close + draw(st.integers(-300, 300)))  # gaps between candles
    return candles


def run_exits(walk, take_profit: str, stop: str, trail: str) -> tuple[Market, list, list]:
    market = Market(units="2")
    group = oco(market, amount="1", take_profit_price=take_profit, stop_price=stop)
    trailing = market.attach(ExitKind.TRAILING_STOP, amount="1", trail_percent=trail)
    for candle in walk:
        market.candle(*candle)
    events = [{**vars(e), "__kind": type(e).__name__} for a in market.desk.take_changes()
              for e in a.collect_events()]
    return market, [group, trailing], events


@given(walk=candle_walks(), take_profit=st.integers(101, 140), stop=st.integers(60, 99),
       trail=st.sampled_from(["0.5", "2", "5", "12.5"]))
def test_exits_on_any_market_fill_once_at_or_beyond_their_levels(walk, take_profit, stop,
                                                                 trail):
    market, (group, trailing), events = run_exits(walk, str(take_profit), str(stop), trail)
    position = market.position
    names = [(e["originator_id"], e["__kind"]) for e in events]
    filled = names.count((group.id, "LegFilled"))
    assert filled == (group.status is ExitStatus.FILLED)  # one leg at most
    if filled:  # and the other cancelled in the same step
        assert names.count((group.id, "LegCancelled")) == 1
        if group.leg == "take_profit":
            assert group.fill_price >= take_profit
        else:
            assert group.fill_price <= stop
    levels = [e["level"] for e in events if e["originator_id"] == trailing.id
              and "level" in e]
    assert levels == sorted(levels)  # a sell stop's level never comes down
    if trailing.status is ExitStatus.FILLED:
        assert trailing.fill_price <= trailing.level
    sold = sum((e["amount"] for e in events if (e["originator_id"], e["__kind"]) == (
        position.id, "Sold")), D(0))
    assert position.units == 2 - sold >= 0
    assert run_exits(walk, str(take_profit), str(stop), trail)[2] == events  # deterministic


def test_a_trailing_entry_the_venue_refuses_cancels_its_pending_position():
    market = Market()
    market.venue.free["USDT"] = D(0)  # nothing left to buy with
    pending = Position.open(market.desk.ids.new_id(), a_cause(), owner_id="u",
                            exchange_account_id="a", pair="BTC/USDT", entry="trailing")
    market.desk.positions[pending.id] = pending
    market.position = pending
    group = market.attach(ExitKind.TRAILING_STOP, side=BUY, amount="1", trail_percent="10")
    market.candle("100", "120", "100", "119")  # up 20 %: the buy stop fires, refused
    assert group.status is ExitStatus.CANCELLED and "rejected" in group.reason
    assert pending.status is PositionStatus.CANCELLED
    assert pending.id not in market.desk.positions
