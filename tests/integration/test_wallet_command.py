"""``tradetape wallet requirements|plans`` on a SQLite store: the requirements after a
rebuild, as of a past moment, and the funding plans by status."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from api.cli import main
from application.bootstrap import open_trading
from application.funding import Funding
from application.paper_trading import PaperTrading
from domain.dca import DcaConfig
from tests.integration.conftest import T0

OWNER = "alice"


def config(base: str) -> DcaConfig:
    # base + 500 + 1000 + 2000 quote, and 0.1 % fees
    return DcaConfig(pair="BTC/USDT", base_order_quote=Decimal(base),
                     safety_order_quote=Decimal(500), max_safety_orders=3,
                     price_deviation_pct=Decimal(1), safety_volume_scale=Decimal(2),
                     safety_step_scale=Decimal(1), take_profit_pct=Decimal(1))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def store(tmp_path) -> tuple[str, datetime]:
    """Alice's paper account (10,000 USDT) with a running bot needing 6506.5 and a second
    bot needing 12512.5 (a plan awaits 9019 USDT); and the moment before the second."""
    url = f"sqlite:///{tmp_path / 'wallet.db'}"
    trading = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("wallet"))
    try:
        paper = PaperTrading(trading, trading.ids, lambda pair, quote, base: PaperExchange(
            pair, quote_balance=quote, base_balance=base))
        funding = Funding(trading, paper)
        account_id = trading.open_account(owner_id=OWNER, exchange="paper",
                                          quote_asset="USDT")
        trading.deposit(account_id, "USDT", Decimal(10000))
        account = str(account_id)
        first = trading.create_bot(owner_id=OWNER, name="first", config=config("3000"),
                                   exchange_account_id=account)
        assert funding.after_create(first, OWNER) is None
        trading.start_bot(first, actor=OWNER)
        time.sleep(0.05)
        before = datetime.now(UTC)
        time.sleep(0.05)
        second = trading.create_bot(owner_id=OWNER, name="second", config=config("9000"),
                                    exchange_account_id=account)
        assert funding.after_create(second, OWNER) is not None
    finally:
        trading.close()
    return url, before


def test_requirements_after_a_rebuild_and_as_of_before_the_second_bot(store, capsys):
    url, before = store
    code, _, err = run(capsys, "wallet", "requirements", "--owner", OWNER, "--database", url)
    assert code == 2 and "VIEW_NOT_BUILT" in err
    assert run(capsys, "projections", "rebuild", "--database", url)[0] == 0
    code, out, _ = run(capsys, "wallet", "requirements", "--owner", OWNER, "--json",
                       "--database", url)
    [row] = json.loads(out)["accounts"]
    assert (Decimal(row["required"]), Decimal(row["available"])) == (Decimal("6506.5"), 10000)
    assert Decimal(row["surplus_deficit"]) == Decimal("3493.5") and row["health"] == "ok"
    assert [b["name"] for b in row["bots"]] == ["first"]  # the second is not running
    code, out, _ = run(capsys, "wallet", "requirements", "--owner", OWNER, "--json",
                       "--as-of", before.isoformat(), "--database", url)
    assert json.loads(out)["accounts"][0]["bots"][0]["name"] == "first"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, _, err = run(capsys, "wallet", "requirements", "--owner", OWNER, "--as-of", later,
                       "--database", url)
    assert code == 2 and "AS_OF_IN_FUTURE" in err


def test_plans_by_status(store, capsys):
    url, _ = store
    code, out, _ = run(capsys, "wallet", "plans", "--owner", OWNER, "--json",
                       "--status", "awaiting_deposit", "--database", url)
    [plan] = json.loads(out)["plans"]
    assert Decimal(plan["amount"]) == Decimal("9019")  # 12512.5 - (10000 - 6506.5)
    assert "deposit 9019 USDT" in plan["message"]
    code, out, _ = run(capsys, "wallet", "plans", "--owner", OWNER, "--json",
                       "--status", "executed", "--database", url)
    assert json.loads(out)["plans"] == []
    code, out, _ = run(capsys, "wallet", "plans", "--owner", OWNER, "--database", url)
    assert code == 0 and "awaiting_deposit" in out
