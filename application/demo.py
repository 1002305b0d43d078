"""The demo a newcomer gets with ``tradetape serve --demo``: one verified user with two
running DCA bots on their paper account. Idempotent: a second start finds and reuses them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
from domain.bots import Bot, BotStatus
from domain.dca import DcaConfig
from domain.recording import topic_of

DEMO_EMAIL = "demo@tradetape.local"
DEMO_PASSWORD = "Tradetape-demo-1"
# Targets above the fees (2 × 0.1%) yet small, so that at the demo's speed (five market
# minutes per second) deals open and close within the first minute. On the shipped month
# (a falling BTC market) about 85% of these deals close within five market hours.
DEMO_SPEED = 300.0
# Where the demo's market begins in the shipped month, counted from the demo user's
# registration (so a restart continues it): a stretch where both bots close deals within
# five market minutes (found by backtesting both bots from every 600th candle).
DEMO_START_CANDLE = 29_400
DEMO_BOTS = {
    "BTC quick scalper": {
        "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
        "max_safety_orders": 6, "price_deviation_pct": "0.3", "safety_volume_scale": "1.5",
        "safety_step_scale": "1.2", "take_profit_pct": "0.35", "stop_loss_pct": "5",
    },
    "BTC deep ladder": {
        "pair": "BTC/USDT", "base_order_quote": "200", "safety_order_quote": "100",
        "max_safety_orders": 6, "price_deviation_pct": "0.5", "safety_volume_scale": "1.4",
        "safety_step_scale": "1.2", "take_profit_pct": "0.4", "stop_loss_pct": "6",
    },
}


@dataclass(frozen=True)
class Demo:
    user_id: UUID
    registered_at: datetime
    email: str
    password: str
    bot_ids: tuple[UUID, ...]

    @property
    def login_line(self) -> str:
        return f"demo login: {self.email} password: {self.password}"


def ensure_demo(identity, trading: Trading) -> Demo:
    user = identity.find_user(DEMO_EMAIL)
    if user is None:
        user_id = identity.register(DEMO_EMAIL, DEMO_PASSWORD, display_name="Demo trader",
                                    verified=True, actor="system")
        user = identity.get_user(user_id)
    owned = _bots_by_name(trading, str(user.id))
    bot_ids = []
    for name, config in DEMO_BOTS.items():
        bot = owned.get(name)
        if bot is None:
            bot_id = trading.create_bot(owner_id=str(user.id), name=name,
                                        config=DcaConfig.from_mapping(config),
                                        exchange_account_id=str(user.paper_account_id))
            bot = trading.get_bot(bot_id)
        if bot.status in (BotStatus.CREATED, BotStatus.PAUSED):
            trading.start_bot(bot.id, actor=str(user.id))
        bot_ids.append(bot.id)
    return Demo(user.id, user.registered_at, DEMO_EMAIL, DEMO_PASSWORD, tuple(bot_ids))


def _bots_by_name(trading: Trading, owner_id: str) -> dict[str, Bot]:
    found = {}
    for n in read_log(trading, [topic_of(Bot.Created)]):
        bot = trading.get_bot(n.originator_id)
        if bot.owner_id == owner_id:
            found[bot.name] = bot
    return found
