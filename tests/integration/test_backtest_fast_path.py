"""The backtest's fast path for trailing exits (a candle that would only raise a trailing
highest is not walked: the highest is raised to its high) stores the same events, byte for
byte, as the general path that walks every such candle, on real and generated candles."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import candles_from_rows, load_candles
from adapters.marketdata.shipped import shipped_series
from adapters.marketdata.walk import write_walk_csv
from application.backtest import run_backtest
from application.bootstrap import open_trading
from application.replay import read_log
from domain.dca import DcaConfig
from tests.integration.test_engine_vs_reference import BTC_BOT, walks
from tests.integration.test_exits_vs_reference import REAL, STEPPED, exit_configs

CONFIGS = [*REAL,
           ("trailing-tp", {**BTC_BOT, "trailing_take_profit_pct": "0.4"}),
           ("trailing-tp-stop", {**BTC_BOT, "trailing_take_profit_pct": "0.4",
                                 "stop_loss_pct": "3"}),
           ("steps-trailing-stop-activation", {**STEPPED, "stop_loss_pct": "2",
                                               "trailing_stop_loss": True,
                                               "stop_loss_activation_pct": "0.3"})]


class CountingVenue(PaperExchange):
    """The paper venue, counting the candles the backtest walks through it."""

    walked = 0

    def walk_candle(self, o, h, low, c, watcher) -> None:
        self.walked += 1
        super().walk_candle(o, h, low, c, watcher)


def stored_run(candles, config: dict, *, fast: bool, balance: str | None = None,
               fee: str = "0.001") -> tuple[str, int, dict]:
    """(SHA-256 of every stored event's bytes and of the run's figures and deal rows,
    candles walked, summary)."""
    trading = open_trading("memory")
    dca, quote = DcaConfig.from_mapping(config), None if balance is None else Decimal(balance)
    venue = CountingVenue(dca.pair, fee_rate=Decimal(fee), quote_balance=quote)
    result = run_backtest(candles, dca, venue=venue, ids=SequentialIds("fast"),
                          append=trading.append_collected, run_seed="fast",
                          fee_rate=Decimal(fee), balance=quote, keep_deals=True,
                          keep_equity=True, equity_points=40, fast_trailing=fast)
    digest = hashlib.sha256()
    for note in read_log(trading):
        digest.update(f"{note.id}|{note.originator_id}|{note.originator_version}|"
                      f"{note.topic}|".encode())
        digest.update(note.state)
    digest.update(repr((result.summary, result.deals, result.open_deal,
                        result.equity_points)).encode())
    digest.update(result.equity.tobytes())
    trading.close()
    return digest.hexdigest(), venue.walked, result.summary


def assert_same_bytes(candles, config: dict, **options) -> tuple[int, int]:
    """The two paths' bytes are equal; (candles walked by the fast path, by the general)."""
    fast, fast_walked, summary = stored_run(candles, config, fast=True, **options)
    general, general_walked, _ = stored_run(candles, config, fast=False, **options)
    assert fast == general, (config, summary)
    assert fast_walked <= general_walked
    return fast_walked, general_walked


# Each real series once, with and without a balance between them: the November series
# without a balance is the next test's (every config, both paths); the fast path under a
# balance that runs out is also held on the random walks below (150 and 1,000 quote). Both
# series under both balances made this the slowest test of the suite (4 backtests of up
# to 1,600 deals per config; 10 configs) for no case the pairs kept here leave open.
@pytest.mark.parametrize(("series", "balance"), [("binance_BTC_USDT-1m-2025-11.csv", "400"),
                                                 ("freqtrade_UNITTEST_BTC-1m.csv", None)])
@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[n for n, _ in CONFIGS])
def test_fast_path_stores_the_general_paths_bytes_on_real_candles(series, balance, name,
                                                                  config):
    if series.startswith("freqtrade"):
        config = {**config, "pair": "UNITTEST/BTC", "max_safety_orders": 2}
    assert_same_bytes(load_candles(shipped_series(series)), config, balance=balance)


# One case per config, not one loop: 20 backtests of 43,200 candles in a single test could
# not be shared between the xdist workers.
@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[n for n, _ in CONFIGS])
def test_the_fast_path_walks_fewer_candles_where_a_deal_trails(name, config):
    candles = load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))
    fast, general = assert_same_bytes(candles, config)
    trails = config.get("trailing_take_profit_pct") or config.get("trailing_stop_loss")
    assert (fast < general) if trails else (fast == general), name


@pytest.mark.parametrize("seed", [6, 7])
def test_fast_path_stores_the_general_paths_bytes_on_generated_walks(tmp_path, seed):
    path = tmp_path / f"walk{seed}.csv"
    write_walk_csv(path, 20_000, seed=seed, volatility="0.002")
    candles = load_candles(path)
    for _, config in CONFIGS:
        assert_same_bytes(candles, config, fee="0")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=walks(), config=exit_configs(), balance=st.sampled_from([None, "150", "1000"]),
       fee=st.sampled_from(["0", "0.001"]))
def test_fast_path_stores_the_general_paths_bytes_on_random_walks(rows, config, balance, fee):
    candles = candles_from_rows([(ts, str(o), str(h), str(lo), str(c))
                                 for ts, o, h, lo, c in rows])
    assert_same_bytes(candles, config, balance=balance, fee=fee)
