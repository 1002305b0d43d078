"""The promotion gate's figures come from the bot's and its deals' events up to a moment:
the same store answers differently as of different moments, exactly as the gate said then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from api.cli import main
from application.bootstrap import open_trading
from application.promotion import paper_record
from domain.dca import DcaConfig
from domain.deals import CloseReason, Deal
from domain.promotion import PromotionRules, missed
from domain.recording import Cause
from tests.stubs import a_config_input

T0 = datetime(2026, 2, 1, tzinfo=UTC)
D = Decimal


def at(delta: timedelta, actor: str = "engine") -> Cause:
    return Cause(T0 + delta, actor, f"c-{delta}")


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """22 deals on day one (deal k opens at k h, closes 30 min later): deal 3 buys twice
    (1 @ 100, 1 @ 90: 190 committed) and sells 2 @ 100 (+10); every deal k divisible by 3
    (7 of them) sells 1 @ 98 (-2); the 14 others sell 1 @ 101 (+1). No fees. The bot is
    paused from day 2 to day 3."""
    url = f"sqlite:///{tmp_path_factory.mktemp('promotion') / 'store.sqlite'}"
    trading = open_trading(url, clock=SteppingClock(T0, timedelta(seconds=1)),
                           ids=SequentialIds("promotion"))
    bot_id = trading.create_bot(owner_id="u1", name="candidate", exchange_account_id="acc",
                                config=DcaConfig.from_mapping(a_config_input()))
    bot = trading.get_bot(bot_id)
    bot.start(at(timedelta(0), "u1"))
    for k in range(22):
        deal = Deal.open(UUID(int=k + 1), at(hours(k)), bot_id=bot_id, owner_id="u1",
                         exchange_account_id="acc", pair="BTC/USDT",
                         take_profit_pct=D("1"), stop_loss_pct=None)
        bot.start_deal(at(hours(k)), deal.id)
        buys = [(D(100), D(1))] + ([(D(90), D(1))] if k == 3 else [])
        for n, (price, amount) in enumerate(buys):
            deal.record_buy(at(hours(k)), order_id=UUID(int=1000 + k * 10 + n),
                            safety_order=n, price=price, amount=amount, fee=D(0))
        price = D(100) if k == 3 else D(98) if k % 3 == 0 else D(101)
        deal.close(at(hours(k + 0.5)), reason=CloseReason.TAKE_PROFIT,
                   order_id=UUID(int=2000 + k), price=price, amount=deal.units, fee=D(0))
        bot.finish_deal(at(hours(k + 0.5)), deal.id)
        trading.save_all(bot, deal)
    bot.pause(at(timedelta(days=2), "u1"))
    bot.start(at(timedelta(days=3), "u1"))
    trading.save_all(bot)
    yield trading, bot_id, url
    trading.close()


def test_the_full_record_adds_up_and_passes_the_default_gate(store) -> None:
    trading, bot_id, _ = store
    record = paper_record(trading, bot_id, T0 + timedelta(days=8))
    assert (record.running_seconds, record.closed_deals, record.wins) == (7 * 86_400, 22, 15)
    assert (record.realized_pnl, record.max_committed_quote) == (D(10), D(190))
    assert record.profit_pct.quantize(D("0.001")) == D("5.263")
    assert missed(record, PromotionRules()) == []


def test_as_of_half_way_through_day_one_the_gate_said_too_early_and_too_few(store) -> None:
    trading, bot_id, _ = store
    record = paper_record(trading, bot_id, T0 + hours(10.5))  # deals 0..10 closed
    assert (record.closed_deals, record.wins, record.realized_pnl) == (11, 8, D(11))
    assert record.running_seconds == 10.5 * 3600
    problems = missed(record, PromotionRules())
    assert [p.code for p in problems] == ["PROMOTION_TOO_EARLY", "PROMOTION_TOO_FEW_DEALS"]
    assert "0.44 days" in problems[0].message and "11 closed deals" in problems[1].message


def test_the_pause_does_not_count_as_running(store) -> None:
    trading, bot_id, _ = store
    record = paper_record(trading, bot_id, T0 + timedelta(days=7, hours=23))
    assert record.running_seconds == 6 * 86_400 + 23 * 3600
    assert [p.code for p in missed(record, PromotionRules())] == ["PROMOTION_TOO_EARLY"]


def test_before_the_bot_existed_nothing_is_counted(store) -> None:
    trading, bot_id, _ = store
    record = paper_record(trading, bot_id, T0 - timedelta(seconds=1))
    assert (record.running_seconds, record.closed_deals, record.max_committed_quote) == (
        0, 0, D(0))


def test_the_command_line_says_what_the_gate_said_as_of_a_moment(store, capsys) -> None:
    _, bot_id, url = store
    base = ["promotion", str(bot_id), "--database", url]
    assert main([*base, "--as-of", "2026-02-01T10:30:00Z"]) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "MISS PROMOTION_TOO_EARLY" in out
    assert "MISS PROMOTION_TOO_FEW_DEALS: 11 closed deals" in out
    assert "ok   PROMOTION_WIN_RATE" in out
    assert main([*base, "--as-of", "2026-02-09", "--json"]) == 0
    assert '"passed": true' in capsys.readouterr().out
    assert main(["promotion", str(UUID(int=99)), "--database", url]) == 2
