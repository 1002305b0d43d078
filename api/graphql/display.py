"""Display forms of money: ``…Display`` fields beside the exact Decimal strings, so a client
need not round 28-digit numbers itself.

An amount is quantized to the minor unit of its currency (ROUND_HALF_EVEN, the rounding
of the Decimal defaults): cents for fiat and the dollar stablecoins, 8 decimals for other
crypto assets; a price to its quote currency's. Where the market is known (a bot on a live
account: its exchange's rules for the pair), a price goes to the market's price tick and an
amount of the base asset to its amount step instead (DOGE/USDT on Binance: prices to
0.00001, amounts in whole coins). The exact fields stay what they are; these are for
showing only, never for sums.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import strawberry
from strawberry.types import Info

TWO_DECIMALS = frozenset({"USD", "EUR", "GBP", "CHF", "USDT", "USDC", "BUSD", "DAI", "TUSD",
                          "FDUSD", "USDP", "PYUSD"})
NO_DECIMALS = frozenset({"JPY", "KRW"})
CRYPTO_PLACES = 8


def minor_unit(asset: str | None) -> Decimal:
    code = (asset or "").upper()
    if code in TWO_DECIMALS:
        return Decimal("0.01")
    if code in NO_DECIMALS:
        return Decimal(1)
    return Decimal(1).scaleb(-CRYPTO_PLACES)


def shown_as(value: Decimal | None, asset: str | None) -> str | None:
    """``value`` rounded to ``asset``'s minor unit, as a plain decimal string."""
    if value is None:
        return None
    try:
        return f"{value.quantize(minor_unit(asset), rounding=ROUND_HALF_EVEN):f}"
    except InvalidOperation:  # too many digits for the context: shown as it is
        return f"{value:f}"


def shown_in_steps(value: Decimal, step: Decimal) -> str:
    """``value`` rounded to the nearest multiple of ``step`` (0.01, 0.5, 1, 10...), with as
    many decimals as the step has."""
    places = max(0, -step.normalize().as_tuple().exponent)
    try:
        steps = (value / step).to_integral_value(rounding=ROUND_HALF_EVEN)
        return f"{(steps * step).quantize(Decimal(1).scaleb(-places)):f}"
    except InvalidOperation:
        return f"{value:f}"


def quote_of(pair: str | None) -> str | None:
    return pair.partition("/")[2] or None if pair else None


def base_of(pair: str | None) -> str | None:
    return pair.partition("/")[0] or None if pair else None


def display(attribute: str, asset: Callable[[Any], str | None]) -> Any:
    """A ``…Display`` field of a type: its ``attribute`` shown in ``asset(root)``'s unit."""

    def resolve(root: strawberry.Parent[Any]) -> str | None:
        return shown_as(getattr(root, attribute), asset(root))

    return strawberry.field(resolver=resolve, description=(
        f"{attribute} rounded to its currency's minor unit, for display only"))


async def market_rules(info: Info, bot_id: str | None, pair: str | None) -> Any:
    """The rules of the market a bot trades ``pair`` on (None: a paper account, or not
    known). Asking an exchange runs off the event loop, once per account and pair."""
    if bot_id is None or not pair:
        return None
    bot = await info.context.loaders.bots.load(str(bot_id))
    account = None if bot is None else bot.get("exchange_account_id")
    if account is None:
        return None
    precision = info.context.runtime.market_precision
    known, rules = precision.remembered(account, pair)
    if known:
        return rules
    return await asyncio.to_thread(precision.rules, account, pair)


def market_display(attribute: str, step: str, asset: Callable[[Any], str | None]) -> Any:
    """A ``…Display`` field shown in its market's ``step`` (``price_step`` or
    ``amount_step``) where the market is known, else in ``asset(root)``'s minor unit."""

    async def resolve(root: strawberry.Parent[Any], info: Info) -> str | None:
        value = getattr(root, attribute)
        if value is None:
            return None
        rules = await market_rules(info, root.bot_id, root.pair)
        size = None if rules is None else getattr(rules, step)
        return shown_in_steps(value, size) if size else shown_as(value, asset(root))

    unit = "price tick" if step == "price_step" else "amount step"
    return strawberry.field(resolver=resolve, description=(
        f"{attribute} rounded to the market's {unit} where the market is known (a live "
        "account's exchange), else to its currency's minor unit; for display only"))
