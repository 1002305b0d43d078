"""One bot's failure in a paper step never touches another's: a bot whose engine raises
(here: numbers stored before they were bounded, which overflow the first time the engine
multiplies them) is set to ERROR with its reason, and every other bot, on the same account
or another, trades that candle and the next ones as if it had not been there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.trading import Trading
from domain.bots import BotStatus
from domain.dca import DcaConfig
from tests.stubs import CONFIG_INPUT

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEALTHY = DcaConfig.from_mapping({**CONFIG_INPUT, "take_profit_pct": "0.3",
                                  "price_deviation_pct": "0.3"})


def poisoned(field: str) -> DcaConfig:
    """A configuration as a bot created before numbers were bounded has it: restored from
    its events without today's rules (``DcaConfig.restore``), as the store hands it out."""
    return DcaConfig.restore({**vars(HEALTHY), field: Decimal("1e999999")})


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


def running_bot(trading: Trading, account: UUID, name: str, config: DcaConfig) -> UUID:
    bot_id = trading.create_bot(owner_id="u1", name=name, config=config,
                                exchange_account_id=str(account))
    trading.start_bot(bot_id, actor="u1")
    return bot_id


def funded_account(trading: Trading) -> UUID:
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
    return account


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


@pytest.mark.parametrize("field", ["take_profit_pct", "safety_volume_scale"])
@pytest.mark.parametrize("same_account", [True, False], ids=["same-account", "two-accounts"])
def test_a_bot_whose_engine_raises_is_failed_alone_and_the_others_trade_on(
        candles, field, same_account, caplog):
    clock = SteppingClock(T0, timedelta(seconds=1))
    trading = open_trading("memory", clock=clock, ids=SequentialIds("isolation"))
    attacker_account = funded_account(trading)
    victim_account = attacker_account if same_account else funded_account(trading)
    # Created and followed first: its failure comes before the other bot's turn.
    attacker = running_bot(trading, attacker_account, "poisoned", poisoned(field))
    victim = running_bot(trading, victim_account, "healthy", HEALTHY)
    runner = PaperTrading(trading, SequentialIds("runner"), venue)
    runner.resume()

    for i in range(240):
        o, h, low, c = candles.exact(i)
        runner.on_candle("BTC/USDT", int(candles.timestamps[i]), o, h, low, c, clock.now())

    failed = trading.get_bot(attacker)
    assert failed.status is BotStatus.ERROR
    assert "out of range" in failed.error_reason and "Overflow" in failed.error_reason
    healthy = trading.get_bot(victim)
    assert healthy.status is BotStatus.RUNNING and healthy.error_reason is None
    assert healthy.deals_opened >= 2 and healthy.deals_finished >= 1  # traded on, closed deals
    assert runner.bot_ids == {victim}
    logged = [r for r in caplog.records if r.name == "tradetape.paper"]
    assert len(logged) == 1 and str(attacker) in logged[0].getMessage()
    assert logged[0].exc_info is None  # one line, no traceback
