"""Test data for the read models: candles that make deals, a day of account and order
activity whose balances are worked out by hand, and dumps of every view table to compare two
views row for row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from application.settings import parse_database_url
from domain.accounts import AccountKind
from domain.bots import Bot, BotMode
from domain.dca import DcaConfig
from domain.orders import Order, OrderPurpose, OrderSide, OrderType
from projections.framework import Projection
from projections.registry import PROJECTIONS
from projections.runner import Projector
from projections.store import ViewStore, open_view_store

START_MS = 1_700_000_000_000
MINUTE_MS = 60_000
# One cycle of a saw: down 1.5% three times (safety orders fill), then back up (take profit).
SAW = ("1", "0.985", "0.97", "0.955", "0.99", "1.02", "1")

CONFIG = DcaConfig(
    pair="BTC/USDT",
    base_order_quote=Decimal("100"),
    safety_order_quote=Decimal("50"),
    max_safety_orders=3,
    price_deviation_pct=Decimal("1"),
    safety_volume_scale=Decimal("1.5"),
    safety_step_scale=Decimal("1.2"),
    take_profit_pct=Decimal("1.5"),
)


def candle_rows(levels: Sequence[Decimal | str], start_ms: int = START_MS,
                base: Decimal = Decimal(100)) -> list[tuple[Any, ...]]:
    """One candle per step from ``levels[i]`` to ``levels[i + 1]`` (times ``base``), with
    a wick of 0.1% either side."""
    rows = []
    for i in range(len(levels) - 1):
        o, c = base * Decimal(levels[i]), base * Decimal(levels[i + 1])
        high, low = max(o, c) * Decimal("1.001"), min(o, c) * Decimal("0.999")
        rows.append((start_ms + i * MINUTE_MS, o, high, low, c))
    return rows


def saw_levels(cycles: int) -> list[str]:
    return list(SAW[:1]) + list(SAW[1:]) * cycles


def backtest(app: Any, rows: list[tuple[Any, ...]], seed: str,
             config: DcaConfig = CONFIG) -> Any:
    """A backtest into ``app``'s store; returns its result (summary, run and bot ids)."""
    from adapters.marketdata.csv_candles import candles_from_rows
    from application.bootstrap import run_backtest_on

    return run_backtest_on(candles_from_rows(rows), config, fee_rate=Decimal("0.001"),
                           balance=None, store_url="memory", seed=seed, trading=app)


@dataclass
class Day:
    account: UUID
    live_account: UUID
    bot: UUID
    buy: UUID
    sell: UUID


def a_day_of_trading(app: Any) -> Day:
    """alice opens a paper account (deposit 1000 USDT, withdraw 100), rests a limit buy of
    0.01 BTC @ 30000, gets 0.004 filled @ 29990 (fee 0.05 USDT), cancels the rest, sells
    the 0.004 BTC at market @ 31000 (fee 0.124 USDT); her live account reports 50 EUR free
    and 5 locked. Her bot is created, started, edited, lists itself on the leaderboard and
    pauses."""
    account = app.open_account(owner_id="alice", exchange="binance", quote_asset="USDT")
    app.deposit(account, "USDT", Decimal("1000"), actor="alice")
    app.withdraw(account, "USDT", Decimal("100"), actor="alice")
    live = app.open_account(owner_id="alice", exchange="kraken", quote_asset="EUR",
                            kind=AccountKind.LIVE)
    app.observe_balance(live, "EUR", Decimal("50"), Decimal("5"))
    bot = app.create_bot(owner_id="alice", name="alice's ladder", config=CONFIG,
                         exchange_account_id=str(account))
    app.start_bot(bot, actor="alice")
    app.edit_bot_config(bot, DcaConfig(**{**vars(CONFIG), "take_profit_pct": Decimal("2")}),
                        actor="alice")
    app.set_leaderboard_opt_in(bot, True, actor="alice")
    buy = a_manual_order(app, account, OrderSide.BUY, OrderType.LIMIT, "0.01", "30000")
    cause = app.cause("engine")
    buy.accept(cause, "ex-1")
    buy.fill(cause, trade_id="t-1", price=Decimal("29990"), amount=Decimal("0.004"),
             fee=Decimal("0.05"), fee_currency="USDT")
    app.save_all(buy)
    buy.request_cancel(app.cause("alice"))
    buy.cancel(app.cause("engine"), "cancelled by the user")
    app.save_all(buy)
    sell = a_manual_order(app, account, OrderSide.SELL, OrderType.MARKET, "0.004", None)
    cause = app.cause("engine")
    sell.accept(cause, "ex-2")
    sell.fill(cause, trade_id="t-2", price=Decimal("31000"), amount=Decimal("0.004"),
              fee=Decimal("0.124"), fee_currency="USDT")
    app.save_all(sell)
    app.pause_bot(bot, actor="alice")
    return Day(account, live, bot, buy.id, sell.id)


def stored_bot_named(app, name: str, owner: str = "alice") -> Bot:
    """A Bot.Created event as an older version stored it, before names were checked: the
    event is recorded without the command's rules."""
    account = app.open_account(owner_id=owner, exchange="paper", quote_asset="USDT")
    bot = Bot._start(Bot.Created, app.ids.new_id(), app.cause(owner), name=name,
                     owner_id=owner, exchange_account_id=str(account), mode=BotMode.PAPER,
                     config=CONFIG)
    app.save_all(bot)
    return bot


def a_manual_order(app: Any, account: UUID, side: OrderSide, kind: OrderType, amount: str,
           price: str | None) -> Order:
    order = Order.submit(
        app.ids.new_id(), app.cause("alice"), client_order_id=f"manual-{side}",
        owner_id="alice", exchange_account_id=str(account), pair="BTC/USDT", side=side,
        type=kind, amount=Decimal(amount), price=None if price is None else Decimal(price),
        purpose=OrderPurpose.MANUAL)
    app.save_all(order)
    return order


# --- views ----------------------------------------------------------------------------------


def view_store(url: str) -> ViewStore:
    return open_view_store(parse_database_url(url))


def catch_up(app: Any, store: ViewStore, classes: Iterable[type[Projection]] | None = None,
             batch_size: int = 500) -> Projector:
    projector = Projector(app, store, [cls() for cls in (classes or PROJECTIONS.values())],
                          batch_size=batch_size)
    projector.catch_up()
    return projector


def dump(store: ViewStore, classes: Iterable[type[Projection]] | None = None,
         suffix: str = "") -> dict[str, list[tuple]]:
    """Every row of every table of ``classes``, in key order: two views are the same when
    their dumps are equal."""
    tables = {}
    for cls in classes or PROJECTIONS.values():
        for table in cls.tables:
            order = ", ".join(table.key)
            tables[table.name] = store.query(
                f"SELECT {', '.join(table.column_names)} FROM {store.q(table.name + suffix)} "
                f"ORDER BY {order}")
    return tables


def one(store: ViewStore, table: str, where: str = "", params: Sequence[Any] = ()) -> dict:
    """The one row of ``table`` matching ``where``, as a dict of stored values."""
    from projections.registry import PROJECTIONS as ALL

    spec = next(t for cls in ALL.values() for t in cls.tables if t.name == table)
    rows = store.select(spec, where, params)
    assert len(rows) == 1, f"{len(rows)} rows in {table} where {where} {params}"
    return rows[0]


def recorded_now() -> str:
    """A moment (ISO text) after every event so far was recorded and before the next one is:
    recorded times are wall-clock times kept by the database (to the millisecond on
    SQLite), whatever clock the application was given."""
    import time
    from datetime import UTC, datetime

    time.sleep(0.003)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.003)
    return moment
