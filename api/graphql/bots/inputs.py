"""DcaConfigInput: a bot configuration as clients send it (camelCase; money and percentages
as strings, never floats). Turned into the domain's DcaConfig, whose rules report every
violation with its field."""

from __future__ import annotations

import strawberry

from domain.dca import DcaConfig


@strawberry.input(description="One take profit step: sell volumePct % at average × (1 + pct/100)")
class TakeProfitStepInput:
    pct: str
    volume_pct: str


@strawberry.input
class DcaConfigInput:
    pair: str
    base_order_quote: str
    safety_order_quote: str
    max_safety_orders: int
    price_deviation_pct: str
    safety_volume_scale: str
    safety_step_scale: str
    take_profit_pct: str | None = None  # required unless takeProfitSteps replace it
    stop_loss_pct: str | None = None
    trailing_take_profit_pct: str | None = None
    cooldown_seconds: int = 0
    take_profit_steps: list[TakeProfitStepInput] | None = None
    stop_loss_to_breakeven: bool = False
    trailing_stop_loss: bool = False
    stop_loss_activation_pct: str | None = None
    start_condition: str = strawberry.field(default="asap", description=(
        "asap: a deal opens at the first candle close without one; signal: only on a "
        "webhook's start_deal (or buy) signal"))

    def to_config(self) -> DcaConfig:
        """The domain configuration, or ``InvalidConfigError`` listing every violation."""
        return DcaConfig.from_mapping({
            "pair": self.pair, "base_order_quote": self.base_order_quote,
            "safety_order_quote": self.safety_order_quote,
            "max_safety_orders": self.max_safety_orders,
            "price_deviation_pct": self.price_deviation_pct,
            "safety_volume_scale": self.safety_volume_scale,
            "safety_step_scale": self.safety_step_scale,
            "take_profit_pct": self.take_profit_pct, "stop_loss_pct": self.stop_loss_pct,
            "trailing_take_profit_pct": self.trailing_take_profit_pct,
            "cooldown_seconds": self.cooldown_seconds,
            "take_profit_steps": None if self.take_profit_steps is None else [
                {"pct": s.pct, "volume_pct": s.volume_pct} for s in self.take_profit_steps],
            "stop_loss_to_breakeven": self.stop_loss_to_breakeven,
            "trailing_stop_loss": self.trailing_stop_loss,
            "stop_loss_activation_pct": self.stop_loss_activation_pct,
            "start_condition": self.start_condition,
        })
