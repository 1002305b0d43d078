"""Take profit steps and a trailing stop loss trade live through the real ccxt binance class
against the local exchange simulator, with the same venue calls as every other exit: each
step a limit sell of its share (rounded down to the exchange's amount step), the log equal
to the exchange's ledger, the realized P/L of every deal what its trades made."""

from __future__ import annotations

from adapters.marketdata.csv_candles import load_candles
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator
from tests.integration.test_live_trading import BOT, LiveWorld, assert_log_matches_the_exchange

STEPPED = {**{k: v for k, v in BOT.items() if k != "take_profit_pct"},
           "take_profit_steps": [{"pct": "0.1", "volume_pct": "50"},
                                 {"pct": "0.25", "volume_pct": "50"}],
           "stop_loss_to_breakeven": True, "stop_loss_pct": "0.5", "trailing_stop_loss": True}


def test_a_stepped_bot_sells_its_steps_live_and_its_log_equals_the_exchange_ledger(tmp_path):
    candles = load_candles(str(BTC_USDT_CANDLES))
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'live.sqlite'}", sim, config=STEPPED)
        world.feed(candles, 0, 500)
        steps = world.events("StepSold")
        closed = world.events("Closed")
        assert steps and closed
        assert "take_profit_step" in {str(e.reason) for e in closed}
        sells = [e for e in world.events("Submitted") if str(e.purpose) == "take_profit_step"]
        assert sells and all(str(e.type) == "limit" for e in sells)
        assert_log_matches_the_exchange(world)
        world.trading.close()


def test_a_trailing_stop_sells_live_on_the_turn(tmp_path):
    candles = load_candles(str(BTC_USDT_CANDLES))
    config = {**BOT, "take_profit_pct": "1", "stop_loss_pct": "0.05",
              "trailing_stop_loss": True}
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'live.sqlite'}", sim, config=config)
        world.feed(candles, 0, 500)
        closed = world.events("Closed")
        assert "trailing_stop_loss" in {str(e.reason) for e in closed}
        assert len(world.events("StopTrailingTriggered")) == sum(
            str(e.reason) == "trailing_stop_loss" for e in closed)
        assert_log_matches_the_exchange(world)
        world.trading.close()
