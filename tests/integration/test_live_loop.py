"""The server's live loop: a replayed feed paced by the clock drives paper bots; an
emergency stop halts every bot until resumed."""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds, SettableClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.replay_feed import ReplayFeed
from adapters.marketdata.shipped import shipped_series
from application.bootstrap import open_trading
from application.live_loop import LiveLoop
from application.paper_trading import PaperTrading
from domain.dca import DcaConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 3, "price_deviation_pct": "0.3", "safety_volume_scale": "1.5",
    "safety_step_scale": "1.2", "take_profit_pct": "0.2",
}


def test_replay_feed_delivers_each_closed_candle_once_at_the_chosen_speed_and_loops():
    candles = load_candles(shipped_series("freqtrade_XRP_ETH-1m.csv"))
    feed = ReplayFeed(candles, "XRP/ETH", speed=60, epoch=T0)
    assert feed.poll(T0) == []
    first = feed.poll(T0 + timedelta(seconds=3.5))  # 3.5 market minutes
    assert [c.ts_ms for c in first] == [int(t) for t in candles.timestamps[:3]]
    assert feed.poll(T0 + timedelta(seconds=3.9)) == []
    assert feed.seconds_to_next(T0 + timedelta(seconds=3.5)) == 0.5
    # a step that lasted past two closes: the loop is told to poll again at once
    assert feed.seconds_to_next(T0 + timedelta(seconds=5.7)) == 0
    assert len(feed.poll(T0 + timedelta(seconds=5.7))) == 2
    assert feed.seconds_to_next(T0 + timedelta(seconds=5.7)) == pytest.approx(0.3)
    laps = len(candles) + 2  # after a full lap the series starts again
    late = T0 + timedelta(seconds=laps)
    looped = ReplayFeed(candles, "XRP/ETH", speed=60, epoch=T0).poll(late)
    assert looped[-1].ts_ms == int(candles.timestamps[1])


def world(tmp_path):
    clock = SettableClock(T0)
    ids = SequentialIds("loop")
    trading = open_trading(f"sqlite:///{tmp_path / 'live.sqlite'}", clock=clock, ids=ids)
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
    bot_id = trading.create_bot(owner_id="u1", name="b", config=DcaConfig.from_mapping(BOT),
                                exchange_account_id=str(account))
    trading.start_bot(bot_id, actor="u1")
    paper = PaperTrading(trading, ids, lambda pair, q, b: PaperExchange(
        pair, quote_balance=q, base_balance=b))
    paper.resume()
    candles = load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))
    seen = []
    loop = LiveLoop(clock, [ReplayFeed(candles, "BTC/USDT", speed=600, epoch=T0)], paper,
                    after_step=seen.append)
    return clock, trading, bot_id, loop, seen


def test_live_loop_steps_bots_as_time_passes_and_reports_its_health(tmp_path):
    clock, trading, bot_id, loop, seen = world(tmp_path)
    for second in range(1, 31):  # 30 s at speed 600 = 300 market minutes
        clock.current = T0 + timedelta(seconds=second)
        loop.step()
    bot = trading.get_bot(bot_id)
    assert bot.deals_opened >= 2 and bot.deals_finished >= 1
    # The first poll joins the market at its latest candle (no history replayed), then
    # every candle that closes is delivered: 1 + 29 steps × 10 candles.
    assert loop.health.candles == 291 and loop.health.steps == 30
    assert sum(seen) == loop.health.events > 0
    assert loop.health.last_step_at == T0 + timedelta(seconds=30)


def test_emergency_stop_halts_every_bot_until_resumed(tmp_path):
    clock, trading, bot_id, loop, _ = world(tmp_path)
    trading.emergency_stop("exchange incident", actor="admin-1")
    for second in range(1, 11):
        clock.current = T0 + timedelta(seconds=second)
        assert loop.step() == 0
    assert trading.get_bot(bot_id).deals_opened == 0
    assert trading.trading_switch().reason == "exchange incident"
    trading.emergency_resume(actor="admin-1")
    clock.current = T0 + timedelta(seconds=11)
    assert loop.step() > 0
    assert trading.get_bot(bot_id).deals_opened == 1


def test_live_loop_thread_stops_after_finishing_its_step(tmp_path):
    clock, _, _, loop, _ = world(tmp_path)
    clock.current = T0 + timedelta(seconds=1)
    loop.max_wait = 0.01
    loop.start()
    assert loop.running
    loop.stop()
    assert not loop.running
    assert loop.health.steps >= 1 and loop.health.last_error is None


def test_a_started_loop_keeps_its_engines_out_of_the_collectors_passes(tmp_path):
    """A server's steps freeze what they leave alive (application/paper_heap.py): a full
    pass of the collector then walks none of the bots' state."""
    clock, _, bot_id, loop, _ = world(tmp_path)
    clock.current = T0 + timedelta(seconds=1)
    loop.max_wait = 0.01
    try:
        loop.start()
        for _ in range(500):
            if loop.health.steps:
                break
            time.sleep(0.01)
        loop.stop()
        with loop.paper.lock:
            engine = loop.paper.engine_of(bot_id)
        walked = {id(o) for o in gc.get_objects()}
        assert loop.health.steps >= 1 and engine.deal is not None
        assert not walked.intersection({id(engine), id(engine.deal), id(engine.bot)})
    finally:
        gc.unfreeze()


def test_replay_feed_anchored_at_a_moment_starts_with_that_candle_and_continues_after():
    candles = load_candles(shipped_series("freqtrade_XRP_ETH-1m.csv"))
    feed = ReplayFeed(candles, "XRP/ETH", speed=60, epoch=T0)
    began = T0 + timedelta(days=3)
    feed.start_at(100, began)
    assert [c.ts_ms for c in feed.poll(began)] == [int(candles.timestamps[100])]
    later = ReplayFeed(candles, "XRP/ETH", speed=60, epoch=T0)  # a restarted server
    later.start_at(100, began)
    assert [c.ts_ms for c in later.poll(began + timedelta(seconds=5))] == [
        int(candles.timestamps[105])]


def run_once(loop: LiveLoop) -> None:
    """One round of ``run()`` in its thread, then stop."""
    import threading

    loop._stop.clear()
    loop._stop.wait = lambda timeout: loop._stop.set()
    worker = threading.Thread(target=loop.run)
    worker.start()
    worker.join(10)
    assert not worker.is_alive()


def test_a_candle_refused_by_a_race_is_stepped_again_without_a_line(tmp_path, caplog):
    """Another writer saves the bot between the runner's look at the log and the candle's
    append (billing pausing a bot, a command from the API): the runner steps the candle
    again on the bot as the log then has it (paused: no deal opens), quietly, and the next
    candles trade on."""
    import logging

    clock, trading, bot_id, loop, _ = world(tmp_path)
    real, raced = loop.paper._reached, []

    def racing(pair, low, high):
        if not raced:
            raced.append(pair)
            trading.pause_bot(bot_id, actor="u1")  # lands after the look, before the append
        return real(pair, low, high)

    loop.paper._reached = racing
    clock.current = T0 + timedelta(seconds=1)  # joins the market: the bot would open a deal
    caplog.set_level(logging.WARNING)
    run_once(loop)
    assert raced and loop.health.last_error is None and loop.health.steps == 1
    assert [r.getMessage() for r in caplog.records] == []
    bot = trading.get_bot(bot_id)
    assert bot.status.value == "paused" and bot.deals_opened == 0
    trading.start_bot(bot_id, actor="u1")  # resumed, as the API's command does it
    loop.paper.follow(bot_id)
    clock.current = T0 + timedelta(seconds=3)
    run_once(loop)  # the next round steps as ever
    assert loop.health.last_error is None and loop.health.steps == 2
    assert trading.get_bot(bot_id).deals_opened == 1


def test_a_candle_refused_at_every_try_is_skipped_in_one_error_line(tmp_path, caplog):
    """Another writer saves the bot at every step of the same candle: after the runner's
    retries the candle is skipped, in one error line with its code and no traceback, with
    nothing of it stored; the loop goes on, and the bot steps the skipped candle before the
    next ones (before, it was lost: the deal opened at the next close)."""
    import logging

    from application.paper_races import RESTEPS

    clock, trading, bot_id, loop, _ = world(tmp_path)
    real, renames = loop.paper._reached, []

    def racing(pair, low, high):
        renames.append(pair)
        trading.rename_bot(bot_id, f"renamed {len(renames)}", actor="u1")
        return real(pair, low, high)

    loop.paper._reached = racing
    clock.current = T0 + timedelta(seconds=1)
    caplog.set_level(logging.INFO)
    run_once(loop)
    assert len(renames) == 1 + RESTEPS
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert "CANDLE_SKIPPED" in lines[0].getMessage() and lines[0].exc_info is None
    retries = [r.getMessage() for r in caplog.records if "stepped again" in r.getMessage()]
    assert len(retries) == RESTEPS  # each names the refusal's code once, as the error does
    assert all(m.count("CONCURRENT_MODIFICATION") == 1 for m in [*retries, lines[0].getMessage()])
    assert trading.get_bot(bot_id).deals_opened == 0
    loop.paper._reached = real
    clock.current = T0 + timedelta(seconds=3)
    run_once(loop)
    assert loop.health.last_error is None and loop.health.steps == 2
    bot = trading.get_bot(bot_id)
    assert bot.deals_opened == 1
    # the skipped candle (the tenth: 1 s at 600x) is stepped before the next ones: the deal
    # opened at its close, as it would have without the races
    candles = load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))
    assert trading.get_deal(bot.open_deal_id).entry_price == candles.exact(9)[3]


def test_each_step_hands_its_figures_to_the_observer_the_composition_root_chose(tmp_path):
    """``on_step`` hears every step once, after it: the candles it delivered, the events it
    returned and each candle's lag from its close (speed 600: a candle closes every 0.1 s)."""
    import json

    clock, _, _, loop, _ = world(tmp_path)
    heard = []
    loop.on_step = heard.append
    returned = []
    for second in (1, 2, 3):
        clock.current = T0 + timedelta(seconds=second)
        returned.append(loop.step())
    assert [f.candles for f in heard] == [1, 10, 10]
    assert [f.events for f in heard] == returned and sum(returned) > 0
    assert [f.ended_at for f in heard] == [T0 + timedelta(seconds=s) for s in (1, 2, 3)]
    assert [round(lag, 6) for lag in heard[1].lags] == [
        round(0.1 * k, 6) for k in range(9, -1, -1)]  # closed at 1.1 s ... 2.0 s
    assert all(f.seconds >= 0 for f in heard)
    # a step that decided something spent processor time on it, never more than its wall
    # time allows (one thread)
    assert all(0 < f.processor <= f.seconds + 0.01 for f in heard if f.events)
    line = json.loads(heard[2].to_json())
    assert line == {"t": (T0 + timedelta(seconds=3)).timestamp(),
                    "s": round(heard[2].seconds, 4), "n": 10, "e": returned[2],
                    "lags": [round(0.1 * k, 3) for k in range(9, -1, -1)],
                    "c": round(heard[2].processor, 4), "a": 0.0}  # (no appending thread)
