"""``tradetape serve`` with ``TRADETAPE_FEED=ccxt:binance`` on the sandbox (the local Binance
simulator, 3000 times faster than real time): the start line says where the market comes
from, a paper bot trades on the exchange's candles, and /health shows the last candle."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import BOT, create_bot, new_user, start_bot, wait_for
from tests.exchange_simulator import running_simulator

pytestmark = pytest.mark.timeout(120)


def test_a_paper_bot_trades_on_the_live_candles_of_the_sandbox_exchange(launch):
    with running_simulator(speed=3000) as sim:
        server = launch(env={"TRADETAPE_FEED": "ccxt:binance", "TRADETAPE_FEED_SANDBOX": "1",
                             "TRADETAPE_SANDBOX_HOST": sim.url,
                             "TRADETAPE_FEED_POLL_SECONDS": "0.2"})
        token = new_user(server, "live@example.com")
        bot_id = create_bot(server, token)
        start_bot(server, token, bot_id)

        wait_for("a deal on live candles",
                 lambda: server.gql(BOT, {"id": bot_id}, token)["bot"]["dealsClosed"] >= 1)
        market = server.health()["engine_loop"]["market"]
        exchange_ms = sim.now_ms()
        server.stop()

    assert ("live market from binance sandbox, closed 1m candles polled every 0.2 s"
            in server.stdout)
    assert market["pairs"] == ["BTC/USDT"] and market["last_error"] is None
    # recent: within two wall seconds of market time at 3000x (a poll every 0.2 s, a step,
    # and a loaded machine between the health answer and the simulator's clock read)
    assert 0 < exchange_ms - market["last_candle_ms"] < 2 * 3000 * 1000
