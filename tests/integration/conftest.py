"""Helpers for tests that run the Trading application on a real store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from application.trading import Trading
from domain.dca import DcaConfig
from domain.deals import CloseReason, Deal
from domain.orders import Order, OrderPurpose, OrderSide, OrderType
from domain.recording import ENGINE

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

# Scales on purpose ("10.00", "1.2300"): a store that normalised Decimals would show here.
CONFIG = DcaConfig(
    pair="BTC/USDT",
    base_order_quote=Decimal("100.00"),
    safety_order_quote=Decimal("20.0"),
    max_safety_orders=3,
    price_deviation_pct=Decimal("1.50"),
    safety_volume_scale=Decimal("1.2300"),
    safety_step_scale=Decimal("1"),
    take_profit_pct=Decimal("1.0"),
    stop_loss_pct=Decimal("10.000"),
)
EDITED = DcaConfig(**{**vars(CONFIG), "take_profit_pct": Decimal("2.50"), "cooldown_seconds": 60})


TradingFactory = Callable[..., Trading]


@pytest.fixture
def trading() -> Iterator[TradingFactory]:
    """Opens ``Trading`` applications with a stepping clock and sequential ids; closes them
    all afterwards (PostgreSQL connections are limited). Request it after the store fixture,
    so the applications close before the store's schema is dropped."""
    opened: list[Trading] = []

    def open_(url: str, *, start: datetime = T0, seed: str = "tests") -> Trading:
        app = open_trading(url, clock=SteppingClock(start), ids=SequentialIds(seed))
        opened.append(app)
        return app

    yield open_
    for app in opened:
        app.close()


def reopen(open_: TradingFactory, app: Trading, url: str) -> Trading:
    """A second application on the same store; in memory the store is the application."""
    return app if url == "memory" else open_(url, seed="reader")


@pytest.fixture
def another_store_url(store_url: str, tmp_path) -> Iterator[str]:
    """A second, empty store of the same kind as ``store_url``."""
    if store_url == "memory":
        yield "memory"
        return
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.sqlite'}"
        return
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    schema = f"t_{uuid.uuid4().hex[:16]}"
    base = store_url.partition("?")[0]
    yield f"{base}?schema={schema}"
    env = parse_database_url(base).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def exact(value: Any) -> Any:
    """A form to compare that keeps what ``==`` forgets: a Decimal's scale (1.23 vs 1.2300),
    an enum member vs its value, an aware vs a naive time, a UUID vs its string."""
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, Enum):
        return (type(value).__qualname__, value.name)
    if isinstance(value, datetime):
        return ("datetime", value.isoformat())
    if isinstance(value, UUID):
        return ("UUID", str(value))
    if is_dataclass(value) and not isinstance(value, type):
        items = {f.name: exact(getattr(value, f.name)) for f in fields(value)}
        return (type(value).__name__, items)
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [exact(item) for item in value])
    return (type(value).__name__, value)


def state_of(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def stored_rows(app: Trading) -> list[tuple[str, UUID, int, bytes]]:
    """Every stored event as the store holds it, in log order."""
    return [
        (n.topic, n.originator_id, n.originator_version, bytes(n.state))
        for n in app.recorder.select_notifications(start=None, limit=10_000)
    ]


@dataclass
class Script:
    bot_id: UUID
    deal_id: UUID
    buy_id: UUID
    sell_id: UUID
    # The events the script's own aggregates recorded, as they were before saving.
    recorded: list[Any] = field(default_factory=list)
    # The aggregates as the script left them in memory, keyed by id.
    aggregates: dict[UUID, Any] = field(default_factory=dict)


# The script's events: the bot's, its deal's and orders', and its owner's roster (opened,
# the bot enrolled).
SCRIPT_EVENTS = 19


def run_script(app: Trading) -> Script:
    """A bot's day: created, started, edited, paused and restarted; one deal bought in two
    fills and a safety order, then sold at take profit."""
    bot_id = app.create_bot(
        owner_id="alice", name="BTC ladder", config=CONFIG, exchange_account_id="acc-1"
    )
    app.start_bot(bot_id, actor="alice")
    app.edit_bot_config(bot_id, EDITED, actor="alice")
    app.pause_bot(bot_id, actor="alice")
    app.start_bot(bot_id, actor="alice")
    script = Script(bot_id, app.ids.new_id(), app.ids.new_id(), app.ids.new_id())

    def save(*aggregates: Any) -> None:
        for aggregate in aggregates:
            script.recorded.extend(aggregate.pending_events)
            script.aggregates[aggregate.id] = aggregate
        app.save_all(*aggregates)

    bot = app.get_bot(bot_id)
    opening = app.cause(ENGINE)
    deal = Deal.open(
        script.deal_id,
        opening,
        bot_id=bot_id,
        owner_id="alice",
        exchange_account_id="acc-1",
        pair="BTC/USDT",
        take_profit_pct=EDITED.take_profit_pct,
        stop_loss_pct=EDITED.stop_loss_pct,
    )
    bot.start_deal(opening, script.deal_id)
    buy = Order.submit(
        script.buy_id,
        opening,
        client_order_id="tt-buy-1",
        owner_id="alice",
        exchange_account_id="acc-1",
        pair="BTC/USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        amount=Decimal("0.00250000"),
        price=Decimal("40000.10"),
        purpose=OrderPurpose.BASE,
        bot_id=bot_id,
        deal_id=script.deal_id,
    )
    save(bot, deal, buy)

    filling = app.cause(ENGINE)
    buy.accept(filling, "ex-1001")
    for trade_id, amount in (("t-1", "0.00100000"), ("t-2", "0.00150000")):
        buy.fill(
            filling,
            trade_id=trade_id,
            price=Decimal("40000.10"),
            amount=Decimal(amount),
            fee=Decimal("0.0000010"),
            fee_currency="BTC",
        )
    deal.record_buy(
        filling,
        order_id=script.buy_id,
        safety_order=0,
        price=Decimal("40000.10"),
        amount=Decimal("0.00250000"),
        fee=Decimal("0.100"),
    )
    deal.record_buy(
        filling,
        order_id=script.buy_id,
        safety_order=1,
        price=Decimal("39400.00"),
        amount=Decimal("0.00050800"),
        fee=Decimal("0.02"),
    )
    save(buy, deal)

    closing = app.cause(ENGINE)
    deal.close(
        closing,
        reason=CloseReason.TAKE_PROFIT,
        order_id=script.sell_id,
        price=Decimal("41000.00"),
        amount=deal.units,
        fee=Decimal("0.12330"),
    )
    bot.finish_deal(closing, script.deal_id)
    save(deal, bot)
    return script
