"""Fee rules: how a venue's fee for a fill is worked out, named and versioned, so a fee that
was recorded can be worked out again from its fill, and a correction can say which rule it
applied."""

from __future__ import annotations

from decimal import Decimal

# The paper venue's rule (and the backtest's): a share of the notional, in the quote asset.
PROPORTIONAL_V1 = "proportional-v1"


def proportional_fee(amount: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """``amount × price × rate``, multiplied in that order (Decimal products round at the
    context's precision, so the order is part of the rule)."""
    return amount * price * rate


def describe_proportional(rate: Decimal) -> str:
    return f"{PROPORTIONAL_V1}: fee = amount × price × {rate}, in the quote asset"
