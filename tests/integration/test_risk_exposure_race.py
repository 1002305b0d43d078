"""A user's maxExposureQuote holds when a position and a deal are decided at the same
instant on two processes: an engine worker opening a deal, and an api process (or another
engine worker) opening a position. Each alone fits the limit, both do not. Before, each
judged before the other's append and both were written (the position's append was not
serialized with the user's other writes); now the decision and the write are one step
across processes for one user, and exactly one of the two opens in every round."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from application.risk_limits import RiskLimits
from domain.risk import RiskLimitError
from tests.integration.test_risk_limits import BOT, EVENING, candles
from tests.integration.test_risk_limits_workers import feed, seed
from tests.integration.test_risk_pause_leased import RiskWorker
from tests.integration.test_risk_positions_workers import (
    ApiProcess,
    positions_of,
    trader_and_other,
)

__all__ = ["candles"]  # (the module's candles fixture)
ROUNDS = 30
ONE_BUY = {**BOT, "max_safety_orders": 0}  # a deal commits its base order: 100
LIMITS = {"maxExposureQuote": "150"}  # a deal (100) or a position (100), never both
POSITION_QUOTE = Decimal("100")
PRICE = Decimal("90000")


def _race(worker, positions, account, minute: int, candles) -> str | None:
    """One round: the worker steps a close where the bot opens a deal while another
    process opens a position, both let go at one instant. Returns what the position's
    refusal said (None: it opened)."""
    start, refused = threading.Barrier(2), []

    def step() -> None:
        o, h, low, c = candles.exact(minute)
        start.wait()
        worker.paper.on_candle("BTC/USDT", int(candles.timestamps[minute]), o, h, low, c,
                               EVENING + timedelta(minutes=minute))

    stepping = threading.Thread(target=step)
    stepping.start()
    start.wait()
    try:
        positions.open_position("u1", exchange_account_id=account, pair="BTC/USDT",
                                quote_amount=POSITION_QUOTE)
    except RiskLimitError as error:
        refused.append(error.limit)
    stepping.join(60)
    return refused[0] if refused else None


@pytest.mark.parametrize("where", ["api", "worker"])
def test_a_position_and_a_deal_at_one_instant_never_pass_the_exposure_limit(
        candles, postgres_url, where):
    """The position on an api process, or on a second engine worker (holding none of the
    user's bots: its own fence of the position's append keeps the hold's stamp)."""
    [bot_id] = seed(postgres_url, accounts=1, per_account=1, limits=LIMITS,
                    config=ONE_BUY)
    worker, other = trader_and_other(postgres_url, where)
    try:
        assert worker.paper.bot_ids == {bot_id}
        positions_of(worker)  # (a worker counts the positions too, as a server wires it)
        positions = positions_of(other)
        account = worker.trading.get_bot(bot_id).exchange_account_id
        other.paper.on_candle("BTC/USDT", 0, *(PRICE,) * 4, other.trading.clock.now())
        both = deals = opened = 0
        for n in range(ROUNDS):
            _race(worker, positions, account, n, candles)
            deal = worker.trading.get_bot(bot_id).open_deal_id
            open_positions = positions.index.open_of("u1")
            both += bool(deal and open_positions)
            deals, opened = deals + bool(deal), opened + len(open_positions)
            if deal is not None:
                worker.paper.close_deal(bot_id)
            for position_id in open_positions:
                positions.close_position("u1", position_id)
        assert both == 0, f"{both} of {ROUNDS} rounds opened a deal and a position"
        assert deals + opened == ROUNDS  # one of the two every round: no round lost both
    finally:
        worker.close()
        other.close()




def _account(url: str) -> str:
    """``u1``'s paper account of 10,000 USDT, with LIMITS set."""
    trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                           ids=SequentialIds("seed"))
    try:
        account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
        RiskLimits(trading).set_limits("u1", LIMITS, actor="u1")
        return str(account)
    finally:
        trading.close()


def _open_one(positions, account: str, start: threading.Barrier, opened: list,
              refused: list) -> None:
    start.wait()
    try:
        opened.append((positions, positions.open_position(
            "u1", exchange_account_id=account, pair="BTC/USDT",
            quote_amount=POSITION_QUOTE)))
    except RiskLimitError as error:
        refused.append(error.limit)


def test_two_positions_at_one_instant_on_two_processes_never_pass_the_exposure_limit(
        postgres_url):
    """Two api processes each open a position of 100 at the same instant, 150 allowed: one
    opens and the other is refused, in every round."""
    account = _account(postgres_url)
    processes = [ApiProcess(postgres_url, "api-1"), ApiProcess(postgres_url, "api-2")]
    try:
        desks = [positions_of(p) for p in processes]
        for process in processes:
            process.paper.on_candle("BTC/USDT", 0, *(PRICE,) * 4,
                                    process.trading.clock.now())
        for n in range(ROUNDS // 2):
            start, opened, refused = threading.Barrier(2), [], []
            threads = [threading.Thread(target=_open_one,
                                        args=(d, account, start, opened, refused))
                       for d in desks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert (len(opened), refused) == (1, ["maxExposureQuote"]), f"round {n}"
            for positions, position in opened:  # (closed by the process holding it)
                positions.close_position("u1", position.id)
    finally:
        for process in processes:
            process.close()


def test_an_api_process_stuck_in_a_hold_delays_the_users_buys_and_stops_nothing(
        candles, postgres_url):
    """An api process hanging inside a position's hold (a live exchange that does not
    answer): the worker's append of that user's deal waits a bounded time and is refused
    with nothing written, the user's bot deferred; once let go, the bot trades on at the
    next close (other users' bots: ``test_exposure_hold_kept.py``)."""
    [bot_id] = seed(postgres_url, accounts=1, per_account=1, limits=LIMITS,
                    config=ONE_BUY)
    worker, api = RiskWorker(postgres_url, "one"), ApiProcess(postgres_url)
    try:
        worker.leases.tick()
        with api.risk.holds.hold("u1"):
            feed((worker,), candles, range(1))
        assert worker.trading.get_bot(bot_id).open_deal_id is None
        feed((worker,), candles, range(1, 2))
        assert worker.trading.get_bot(bot_id).open_deal_id is not None
    finally:
        worker.close()
        api.close()
