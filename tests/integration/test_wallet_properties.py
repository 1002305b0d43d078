"""The ``wallet`` view under any sequence of bot commands (create, start, pause, stop, fail,
reset, edit, deposit): followed one event at a time it holds the same rows as a rebuild in
one batch, and what it says the running bots need is what the funding rule computes from
the aggregates."""

from __future__ import annotations

from contextlib import suppress
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.funding import Funding
from application.paper_trading import PaperTrading
from domain.dca import DcaConfig
from domain.errors import DomainError
from projections.balances import Balances
from projections.wallet import WalletRequirements, wallet_requirements
from tests.integration.conftest import T0
from tests.projection_stubs import catch_up, dump, view_store

CLASSES = [Balances, WalletRequirements]
OWNER = "owner"


def config(base: int, count: int) -> DcaConfig:
    return DcaConfig(pair="BTC/USDT", base_order_quote=Decimal(base),
                     safety_order_quote=Decimal(25), max_safety_orders=count,
                     price_deviation_pct=Decimal(1), safety_volume_scale=Decimal("1.5"),
                     safety_step_scale=Decimal(1), take_profit_pct=Decimal(1))


commands = st.lists(st.tuples(
    st.sampled_from(["create", "start", "pause", "stop", "fail", "reset", "edit", "deposit"]),
    st.integers(0, 3), st.integers(10, 500), st.integers(0, 4)), min_size=1, max_size=25)


def apply(trading, bots: list, account, op: tuple) -> None:
    kind, which, number, count = op
    if kind == "deposit":
        trading.deposit(account, "USDT", Decimal(number))
        return
    if kind == "create":
        bots.append(trading.create_bot(owner_id=OWNER, name=f"b{len(bots)}",
                                       config=config(number, count),
                                       exchange_account_id=str(account)))
        return
    if not bots:
        return
    bot = bots[which % len(bots)]
    command = {"start": lambda: trading.start_bot(bot), "pause": lambda: trading.pause_bot(bot),
               "stop": lambda: trading.stop_bot(bot),
               "fail": lambda: trading.fail_bot(bot, "broken"),
               "reset": lambda: trading.reset_bot_error(bot),
               "edit": lambda: trading.edit_bot_config(bot, config(number, count))}[kind]
    with suppress(DomainError):  # not allowed from where the bot is: nothing recorded
        command()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=commands)
def test_followed_equals_rebuilt_and_the_view_agrees_with_the_rule(tmp_path_factory, ops):
    folder = tmp_path_factory.mktemp("wallet")
    trading = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("prop"))
    followed, rebuilt = (view_store(f"sqlite:///{folder / name}.db") for name in ("f", "r"))
    try:
        account = trading.open_account(owner_id=OWNER, exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal(1000))
        bots: list = []
        for op in ops:
            apply(trading, bots, account, op)
            catch_up(trading, followed, CLASSES, batch_size=1)
        catch_up(trading, rebuilt, CLASSES, batch_size=10_000)
        assert dump(followed, CLASSES) == dump(rebuilt, CLASSES)
        paper = PaperTrading(trading, trading.ids, lambda pair, quote, base: PaperExchange(
            pair, quote_balance=quote, base_balance=base))
        [row] = wallet_requirements(followed, OWNER)
        assert row["required"] == Funding(trading, paper).committed(
            str(account), "USDT", owner_id=OWNER)
        assert row["available"] == paper.paper_wallet(str(account))["USDT"].total
    finally:
        followed.close()
        rebuilt.close()
        trading.close()
