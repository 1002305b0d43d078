"""One paper account, two pairs: its deposit is counted once, whichever pair spends it, and
a restarted runner rebuilds the same single wallet from the events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from domain.dca import DcaConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def bot(pair: str) -> DcaConfig:
    return DcaConfig.from_mapping({
        "pair": pair, "base_order_quote": "600", "safety_order_quote": "10",
        "max_safety_orders": 1, "price_deviation_pct": "50", "safety_volume_scale": "1",
        "safety_step_scale": "1", "take_profit_pct": "50"})


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


def runner_on(url: str, seed: str):
    clock = SteppingClock(T0, timedelta(seconds=1))
    trading = open_trading(url, clock=clock, ids=SequentialIds(seed))
    return trading, clock


def test_one_deposit_is_spent_once_across_two_pairs_and_survives_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'pairs.sqlite'}"
    trading, clock = runner_on(url, "p")
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("1000"), actor="u1")
    bots = {}
    for pair in ("BTC/USDT", "ETH/USDT"):
        bots[pair] = trading.create_bot(owner_id="u1", name=pair, config=bot(pair),
                                        exchange_account_id=str(account))
        trading.start_bot(bots[pair], actor="u1")
    runner = PaperTrading(trading, trading.ids, venue)
    runner.resume()
    one = Decimal(1)
    runner.on_candle("BTC/USDT", 0, one * 100, one * 100, one * 100, one * 100, clock.now())
    # 600 of the 1,000 USDT (plus its fee) went into BTC: ETH's 600 cannot be paid as well.
    runner.on_candle("ETH/USDT", 0, one * 10, one * 10, one * 10, one * 10, clock.now())
    btc = trading.get_bot(bots["BTC/USDT"])
    eth = trading.get_bot(bots["ETH/USDT"])
    assert btc.open_deal_id is not None
    assert eth.open_deal_id is None and str(eth.status) == "error"
    assert "insufficient funds" in eth.error_reason

    venue_btc = runner._market(str(account), "BTC/USDT").venue
    balance = venue_btc.fetch_balance()
    spent = Decimal("600") * Decimal("1.001")  # the base order and its 0.1 % fee
    assert balance["USDT"].total == Decimal("1000") - spent
    assert balance["BTC"].total == Decimal("6")
    trading.close()

    # A new process rebuilds one wallet: the same USDT, seen from either pair.
    trading, clock = runner_on(url, "q")
    restarted = PaperTrading(trading, trading.ids, venue)
    restarted.resume()
    for pair in ("BTC/USDT", "ETH/USDT"):
        seen = restarted._market(str(account), pair).venue.fetch_balance()
        assert seen["USDT"].total == Decimal("1000") - spent
        assert seen["BTC"].total == Decimal("6")
    trading.close()
