"""The one place that builds test data. Everything is valid by default; a test overrides only
what it is about, so the reader sees the one value that matters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.bots import Bot, BotMode
from domain.dca import DcaConfig
from domain.deals import Deal
from domain.orders import Order, OrderPurpose, OrderSide, OrderType
from domain.recording import Cause, TradetapeAggregate

BOT_ID = UUID("00000000-0000-4000-8000-00000000b071")
DEAL_ID = UUID("00000000-0000-4000-8000-00000000d0a1")
OTHER_DEAL_ID = UUID("00000000-0000-4000-8000-00000000d0a2")
ORDER_ID = UUID("00000000-0000-4000-8000-0000000000e1")
SELL_ORDER_ID = UUID("00000000-0000-4000-8000-0000000000e2")
OWNER_ID = "user-1"
ACCOUNT_ID = "account-1"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

# A 3Commas-style bot as a user would type it in bot.json.
CONFIG_INPUT: dict[str, object] = {
    "pair": "BTC/USDT",
    "base_order_quote": "100",
    "safety_order_quote": "50",
    "max_safety_orders": 3,
    "price_deviation_pct": "1",
    "safety_volume_scale": "2",
    "safety_step_scale": "1.5",
    "take_profit_pct": "2",
    "stop_loss_pct": None,
    "trailing_take_profit_pct": None,
    "cooldown_seconds": 0,
}


def at(minute: int = 0) -> datetime:
    return T0 + timedelta(minutes=minute)


def a_cause(minute: int = 0, actor: str = OWNER_ID, correlation_id: str | None = None) -> Cause:
    return Cause(at(minute), actor, correlation_id or f"corr-{minute}")


def a_config_input(**overrides: object) -> dict[str, object]:
    """The user-input form (strings and ints), for ``DcaConfig.from_mapping``."""
    return {**CONFIG_INPUT, **overrides}


def a_config(**overrides: Any) -> DcaConfig:
    """A valid ``DcaConfig``; overrides are passed as given (use ``Decimal`` for money)."""
    values: dict[str, Any] = {
        "pair": "BTC/USDT",
        "base_order_quote": Decimal("100"),
        "safety_order_quote": Decimal("50"),
        "max_safety_orders": 3,
        "price_deviation_pct": Decimal("1"),
        "safety_volume_scale": Decimal("2"),
        "safety_step_scale": Decimal("1.5"),
        "take_profit_pct": Decimal("2"),
    }
    return DcaConfig(**{**values, **overrides})


def a_bot(
    *,
    bot_id: UUID = BOT_ID,
    name: str = "BTC dip buyer",
    config: DcaConfig | None = None,
    mode: BotMode = BotMode.PAPER,
    cause: Cause | None = None,
) -> Bot:
    return Bot.create(
        bot_id,
        cause or a_cause(0),
        name=name,
        owner_id=OWNER_ID,
        exchange_account_id=ACCOUNT_ID,
        config=config or a_config(),
        mode=mode,
    )


def a_deal(
    *,
    take_profit_pct: Decimal = Decimal("2"),
    stop_loss_pct: Decimal | None = Decimal("10"),
    cause: Cause | None = None,
) -> Deal:
    return Deal.open(
        DEAL_ID,
        cause or a_cause(0),
        bot_id=BOT_ID,
        owner_id=OWNER_ID,
        exchange_account_id=ACCOUNT_ID,
        pair="BTC/USDT",
        take_profit_pct=take_profit_pct,
        stop_loss_pct=stop_loss_pct,
    )


def an_order(
    *,
    type: OrderType = OrderType.LIMIT,
    side: OrderSide = OrderSide.BUY,
    amount: Decimal = Decimal("1"),
    price: Decimal | None = Decimal("30000"),
    purpose: OrderPurpose = OrderPurpose.BASE,
    cause: Cause | None = None,
) -> Order:
    return Order.submit(
        ORDER_ID,
        cause or a_cause(0),
        client_order_id="tt-1",
        owner_id=OWNER_ID,
        exchange_account_id=ACCOUNT_ID,
        pair="BTC/USDT",
        side=side,
        type=type,
        amount=amount,
        price=price,
        purpose=purpose,
        bot_id=BOT_ID,
        deal_id=DEAL_ID,
    )


def replay(events: Sequence[Any]) -> TradetapeAggregate:
    """Rebuild an aggregate from its events alone, as a repository would."""
    aggregate = events[0].mutate(None)
    for event in events[1:]:
        aggregate = event.mutate(aggregate)
    return aggregate


def state_of(aggregate: TradetapeAggregate) -> dict[str, Any]:
    """Everything an aggregate knows, without its not-yet-saved events."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


ACCOUNT_UUID = UUID("00000000-0000-4000-8000-0000000000a1")


def a_live_account(*, sandbox: bool = True, name: str = "binance testnet",
                   minute: int = 0) -> Any:
    """A live exchange account, opened and connected; its keys stand for sealed ones."""
    from domain.accounts import AccountKind, ExchangeAccount, SealedKeys

    account = ExchangeAccount.open(ACCOUNT_UUID, a_cause(minute), owner_id=OWNER_ID,
                                   kind=AccountKind.LIVE, exchange="binance",
                                   quote_asset="USDT")
    account.connect(a_cause(minute), name=name, sandbox=sandbox,
                    keys=SealedKeys("v1.sealed-key", "v1.sealed-secret"))
    return account


def a_paper_account(minute: int = 0) -> Any:
    from domain.accounts import AccountKind, ExchangeAccount

    return ExchangeAccount.open(ACCOUNT_UUID, a_cause(minute), owner_id=OWNER_ID,
                                kind=AccountKind.PAPER, exchange="paper", quote_asset="USDT")


def a_verified_user(user_id: UUID, paper_account_id: UUID = ACCOUNT_UUID,
                    verified: bool = True) -> Any:
    """A user who registered and verified their email (``verified=False``: not yet);
    sealed fields are placeholders."""
    from domain.credentials import token_digest
    from domain.users import User

    user = User.register(user_id, a_cause(0, actor=str(user_id)), role="user",
                         sealed_email="v1.sealed-email", sealed_password_hash="v1.sealed-hash",
                         paper_account_id=paper_account_id)
    user.issue_verification(a_cause(0), token_digest("verify-me"))
    if verified:
        user.verify_email(a_cause(0), token_digest("verify-me"))
    return user
