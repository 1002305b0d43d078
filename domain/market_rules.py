"""An exchange's minimums, as a rule on numbers: why an order of an amount at a price cannot
be placed on a market with these rules (``MarketRules``, domain/ports.py), or None.

One rule for the ccxt venue (checked before anything is sent), ``dca-plan --exchange``
(flags the ladder's levels before a bot starts) and ``createBot`` (refuses a base order
below the minimum order value)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from domain.ports import MarketRules


def amount_in_steps(amount: Decimal, rules: MarketRules) -> Decimal:
    """``amount`` rounded down to the market's amount step (as the exchange would take it)."""
    step = rules.amount_step
    if not step:
        return amount
    return (amount / step).to_integral_value(rounding=ROUND_DOWN) * step


def minimum_problem(rules: MarketRules, pair: str, amount: Decimal,
                    price: Decimal | None) -> str | None:
    """Why an order of ``amount`` at ``price`` (None: not known, e.g. a market order
    without a reference price) cannot be placed, or None: ``CODE: figures``."""
    if amount <= 0 or (rules.min_amount is not None and amount < rules.min_amount):
        return (f"ORDER_BELOW_MIN_AMOUNT: {pair} amount {amount} is below the exchange's "
                f"minimum of {rules.min_amount or rules.amount_step}")
    if price is not None and rules.min_notional is not None:
        notional = amount * price
        if notional < rules.min_notional:
            return (f"ORDER_BELOW_MIN_NOTIONAL: {pair} {amount} × {price} = {notional} is below "
                    f"the exchange's minimum order value of {rules.min_notional}")
    return None


def quote_problem(rules: MarketRules, pair: str, quote: Decimal, what: str) -> str | None:
    """Why an order spending ``quote`` (a DCA bot's base or safety order) cannot be placed
    whatever the price: below the minimum order value."""
    if rules.min_notional is not None and quote < rules.min_notional:
        return (f"ORDER_BELOW_MIN_NOTIONAL: the {what} of {quote} is below {pair}'s minimum "
                f"order value of {rules.min_notional}")
    return None
