"""The live feed (``TRADETAPE_FEED=ccxt:binance`` with the sandbox) on the local Binance
simulator running 600 times faster than real time: every closed candle exactly once, in
order, with the shipped file's exact prices, across the exchange going away and back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from application.bootstrap import open_live_feed
from application.server_settings import LiveFeed, ServerSettings
from domain.errors import DomainError
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator

MINUTE = 60_000
ROWS = [line.split(",") for line in BTC_USDT_CANDLES.read_text().splitlines()[1:3000]]
T0 = int(ROWS[0][0])


def shipped(index: int) -> tuple:
    row = ROWS[index]
    return (int(row[0]), *(Decimal(v) for v in row[1:5]))


def seen(candles) -> list[tuple]:
    return [(c.ts_ms, c.open, c.high, c.low, c.close) for c in candles]


def poll_for(feed, seconds: float, delivered: list, wall: list[datetime]) -> int:
    """Poll as the live loop does for ``seconds``; the number of failed rounds."""
    failures = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        wall[0] += timedelta(seconds=0.05)
        delivered += feed.poll(wall[0])
        failures += feed.last_error is not None
        time.sleep(0.05)
    return failures


def test_every_closed_candle_once_in_order_across_a_disconnect_on_a_fast_exchange():
    with running_simulator(speed=600, start_ms=T0 + 5 * MINUTE) as sim:
        latest_before = (sim.now_ms() - T0) // MINUTE - 1  # closed before the feed opened
        feed = open_live_feed(LiveFeed("binance", sandbox=True, sandbox_host=sim.url,
                                       poll_seconds=0.1), pairs=lambda: {"BTC/USDT"})
        delivered: list = []
        wall = [datetime(2030, 1, 1, tzinfo=UTC)]  # paces the polls only
        poll_for(feed, 1.5, delivered, wall)
        latest_after_first_polls = (sim.now_ms() - T0) // MINUTE - 1
        sim.go_down()
        failed_rounds = poll_for(feed, 1.5, delivered, wall)
        missed_while_down = (sim.now_ms() - delivered[-1].ts_ms) // MINUTE - 1
        sim.come_up()
        poll_for(feed, 1.5, delivered, wall)
        sim.set_speed(0)
        poll_for(feed, 0.5, delivered, wall)
        closed = (sim.now_ms() - T0) // MINUTE  # candles 0 .. closed-1 have closed

    first = (delivered[0].ts_ms - T0) // MINUTE  # the latest closed when it started
    assert failed_rounds > 0 and missed_while_down > 5  # it really went away a while
    # it starts at the latest closed candle when it first polls (on a loaded machine that
    # poll may come seconds, i.e. dozens of candles at 600x, after the simulator started)
    assert latest_before <= first <= latest_after_first_polls
    assert seen(delivered) == [shipped(i) for i in range(first, closed)]
    assert feed.status()["last_error"] is None
    assert feed.status()["lag_seconds"] < 60


def test_the_setting_names_the_exchange_sandbox_and_poll():
    settings = ServerSettings.from_environ({"TRADETAPE_FEED": "ccxt:binance",
                                            "TRADETAPE_FEED_SANDBOX": "1",
                                            "TRADETAPE_SANDBOX_HOST": "http://127.0.0.1:9100",
                                            "TRADETAPE_FEED_POLL_SECONDS": "0.5"})
    shorthand = ServerSettings.from_environ({"TRADETAPE_FEED": "ccxt:binance:sandbox"})
    replay = ServerSettings.from_environ({})

    assert settings.live_feed == LiveFeed("binance", True, "http://127.0.0.1:9100", 0.5)
    assert shorthand.live_feed.sandbox and shorthand.live_feed.poll_seconds == 2
    assert settings.feed == replay.feed  # what --demo replays all the same
    assert replay.live_feed is None and replay.feed == "binance_BTC_USDT-1m-2025-11.csv"


BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 3, "price_deviation_pct": "0.3", "safety_volume_scale": "1.5",
    "safety_step_scale": "1.2", "take_profit_pct": "0.2",
}


def test_paper_bots_trade_on_the_live_candles_of_the_pairs_they_trade(tmp_path):
    from adapters.clock import SequentialIds, SettableClock
    from adapters.exchanges.paper import PaperExchange
    from application.bootstrap import open_trading
    from application.live_loop import LiveLoop
    from application.paper_trading import PaperTrading
    from domain.dca import DcaConfig

    wall = datetime(2030, 1, 1, tzinfo=UTC)
    clock, ids = SettableClock(wall), SequentialIds("live")
    trading = open_trading(f"sqlite:///{tmp_path / 'live.sqlite'}", clock=clock, ids=ids)
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
    bot_id = trading.create_bot(owner_id="u1", name="b", config=DcaConfig.from_mapping(BOT),
                                exchange_account_id=str(account))
    paper = PaperTrading(trading, ids, lambda pair, q, b: PaperExchange(
        pair, quote_balance=q, base_balance=b))
    with running_simulator(speed=0, start_ms=T0 + 10 * MINUTE) as sim:
        feed = open_live_feed(LiveFeed("binance", sandbox=True, sandbox_host=sim.url,
                                       poll_seconds=1), pairs=paper.traded_pairs)
        loop = LiveLoop(clock, [feed], paper)
        loop.step()
        assert feed.status()["pairs"] == []  # no bot runs yet: no pair is followed
        trading.start_bot(bot_id, actor="u1")
        paper.resume()
        for second in range(1, 61):
            sim.advance(10 * MINUTE)
            clock.current = wall + timedelta(seconds=second)
            loop.step()
    bot = trading.get_bot(bot_id)

    # Its latest closed candle at the first poll, then the 10 that close each second after.
    assert loop.health.candles == 1 + 59 * 10
    assert bot.deals_opened >= 2 and bot.deals_finished >= 1
    assert feed.status()["pairs"] == ["BTC/USDT"] and feed.status()["lag_seconds"] == 0


@pytest.mark.parametrize(("env", "code"), [
    ({"TRADETAPE_FEED": "ccxt:"}, "INVALID_SETTING"),
    ({"TRADETAPE_FEED": "ccxt:binance:live"}, "INVALID_SETTING"),
    ({"TRADETAPE_FEED": "ccxt:binance", "TRADETAPE_FEED_POLL_SECONDS": "0"}, "INVALID_SETTING"),
    ({"TRADETAPE_FEED": "ccxt:binance", "TRADETAPE_FEED_POLL_SECONDS": "nan"},
     "INVALID_SETTING"),
    ({"TRADETAPE_FEED": "ccxt:binance", "TRADETAPE_FEED_SANDBOX": "maybe"}, "INVALID_SETTING"),
    ({"TRADETAPE_FEED": "ccxt:nosuchexchange"}, "EXCHANGE_NOT_SUPPORTED"),
    ({"TRADETAPE_FEED": "ccxt:binance:sandbox", "TRADETAPE_SANDBOX_HOST": "127.0.0.1:9"},
     "INVALID_SETTING"),
])
def test_a_wrong_live_feed_setting_is_refused_before_the_server_starts(env, code):
    with pytest.raises(DomainError) as caught:
        settings = ServerSettings.from_environ(env)
        open_live_feed(settings.live_feed, pairs=set)

    assert caught.value.code == code
