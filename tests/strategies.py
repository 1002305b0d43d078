"""Hypothesis strategies shared by tests: valid DCA configurations as a user types them."""

from __future__ import annotations

from hypothesis import strategies as st


def dca_configs(stop_losses=(None, "1.5", "5", "10"), cooldowns=(0,)) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "pair": st.just("BTC/USDT"),
        "base_order_quote": st.sampled_from(["10", "100", "250.5"]),
        "safety_order_quote": st.sampled_from(["10", "100", "33.3"]),
        "max_safety_orders": st.integers(min_value=0, max_value=6),
        "price_deviation_pct": st.sampled_from(["0.5", "1", "1.7", "3"]),
        "safety_volume_scale": st.sampled_from(["1", "1.5", "2"]),
        "safety_step_scale": st.sampled_from(["0.8", "1", "1.4"]),
        "take_profit_pct": st.sampled_from(["0.5", "1", "2.5"]),
        "stop_loss_pct": st.sampled_from(list(stop_losses)),
        "cooldown_seconds": st.sampled_from(list(cooldowns)),
    })
