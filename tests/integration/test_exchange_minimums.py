"""An exchange's minimums before a bot starts: ``dca-plan --exchange`` flags the levels the
exchange would refuse (read from its markets through ccxt, here the local Binance simulator,
whose BTC/USDT minimum order value is Binance's 5 USDT), and a bot on an exchange account
whose base order is below the minimum is not even created."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.clock import SequentialIds
from adapters.exchanges.ccxt_venue import CcxtExchange
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.bot_commands import BotCommands
from application.live_venue import LiveVenue
from application.paper_trading import PaperTrading
from domain.accounts import AccountKind
from domain.dca import DcaConfig
from domain.errors import DomainError
from domain.ports import ApiCredentials
from tests.exchange_simulator import running_simulator

TRADETAPE = Path(sys.executable).with_name("tradetape")
CONFIG = {
    "pair": "BTC/USDT", "base_order_quote": "20", "safety_order_quote": "4",
    "max_safety_orders": 3, "price_deviation_pct": "1", "safety_volume_scale": "2",
    "safety_step_scale": "1", "take_profit_pct": "1",
}


def test_dca_plan_flags_the_levels_the_exchange_would_refuse(tmp_path):
    config = tmp_path / "bot.json"
    config.write_text(json.dumps(CONFIG))
    with running_simulator() as sim:
        done = subprocess.run(
            [str(TRADETAPE), "dca-plan", "--config", str(config), "--price", "100000",
             "--exchange", "binance", "--sandbox", "--json"],
            check=False, capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "TRADETAPE_SANDBOX_HOST": sim.url})
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    problems = {level["n"]: level["exchange_problem"] for level in plan["levels"]}
    assert plan["exchange"] == "binance"
    # base 20 USDT and safety orders of 4, 8 and 16 USDT against a 5 USDT minimum: only the
    # first safety order is refused, by name, with its figures (amounts in whole steps)
    assert problems[0] is None
    assert problems[1].startswith("ORDER_BELOW_MIN_NOTIONAL: BTC/USDT 0.00004 × 99000")
    assert problems[2] is None and problems[3] is None


def test_dca_plan_names_an_unreachable_exchange(tmp_path):
    config = tmp_path / "bot.json"
    config.write_text(json.dumps(CONFIG))
    done = subprocess.run(
        [str(TRADETAPE), "dca-plan", "--config", str(config), "--price", "100000",
         "--exchange", "binance", "--sandbox"], check=False, capture_output=True, text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRADETAPE_SANDBOX_HOST": "http://127.0.0.1:9"})
    assert done.returncode == 1
    assert "EXCHANGE_UNAVAILABLE" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("base, refused", [("4", True), ("5", False)])
def test_a_bot_whose_base_order_is_below_the_minimum_is_not_created(tmp_path, base, refused):
    from application.user_views import Principal
    from domain.users import Role

    with running_simulator() as sim:
        trading = open_trading(f"sqlite:///{tmp_path / 'rules.sqlite'}", ids=SequentialIds())
        user = trading.ids.new_id()
        account = trading.open_account(owner_id=str(user), exchange="binance",
                                       quote_asset="USDT", kind=AccountKind.LIVE)

        def venues(account, pair):
            return LiveVenue(venues.exchange, pair, account_id=str(account.id), sandbox=True)

        venues.exchange = CcxtExchange.open(
            "binance", sandbox=True, sandbox_host=sim.url,
            credentials=ApiCredentials(sim.api_key, sim.secret))
        venues.market_rules = lambda account, pair: venues.exchange.market_rules(pair)
        runner = PaperTrading(trading, trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                              live_venues=venues)
        commands = BotCommands(trading, runner, traded_pair=None)
        principal = Principal(user, Role.USER, True)
        config = DcaConfig.from_mapping({**CONFIG, "base_order_quote": base,
                                         "safety_order_quote": "10"})
        if refused:
            with pytest.raises(DomainError) as caught:
                commands.create_bot(principal, "too small", config, str(account))
            assert caught.value.code == "ORDER_BELOW_MIN_NOTIONAL"
            assert caught.value.field == "base_order_quote"
        else:
            bot_id = commands.create_bot(principal, "big enough", config, str(account))
            assert str(trading.get_bot(bot_id).mode) == "live"
        trading.close()
