"""DCA (dollar-cost averaging) bot configuration and its safety-order ladder, 3Commas semantics.

Safety order ``n`` (1..N) buys ``S × VS^(n−1)`` quote at a deviation of
``D × (1 + SS + … + SS^(n−1))`` % below the base order's fill price ``P0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from decimal import Decimal

from domain.dca_exits import TakeProfitStep, exit_violations, parse_steps
from domain.errors import DomainError, InvalidConfigError
from domain.money import HUNDRED, ONE, ZERO, to_decimal
from domain.numbers import Bounds, parse_number, parse_whole
from domain.text import checked_text

MAX_SAFETY_ORDERS_LIMIT = 100
PAIR_MAX = 32  # characters of a pair such as BTC/USDT
MAX_COOLDOWN_SECONDS = 31_536_000  # a year
D = Decimal
_QUOTE = Bounds(D("0.00000001"), D("1e12"), sign_code="NOT_POSITIVE")
_PCT = Bounds(D("0.0001"), D(1000), sign_code="NOT_POSITIVE")
_SCALE = Bounds(D("0.01"), D(10), sign_code="NOT_POSITIVE")
# Each number's range (digits and exponent are bounded for all: domain.numbers). The
# README's bot configuration table says the same; rules that relate fields (safety orders
# that reach zero, a trailing take profit below the take profit) come on top.
FIELD_BOUNDS: dict[str, Bounds] = {
    "base_order_quote": _QUOTE,
    "safety_order_quote": _QUOTE,
    "price_deviation_pct": Bounds(D("0.0001"), HUNDRED, high_open=True,
                                  sign_code="NOT_POSITIVE"),
    "safety_volume_scale": _SCALE,
    "safety_step_scale": _SCALE,
    "take_profit_pct": _PCT,
    "stop_loss_pct": Bounds(D("0.0001"), HUNDRED, high_open=True),
    "trailing_take_profit_pct": Bounds(D("0.0001"), D(1000)),
    "stop_loss_activation_pct": Bounds(D(0), D(1000), sign_code="NEGATIVE"),
}

_DECIMAL_FIELDS = (
    "base_order_quote",
    "safety_order_quote",
    "price_deviation_pct",
    "safety_volume_scale",
    "safety_step_scale",
    "take_profit_pct",
)
_OPTIONAL_DECIMAL_FIELDS = ("stop_loss_pct", "trailing_take_profit_pct", "stop_loss_activation_pct")
_INT_FIELDS = ("max_safety_orders", "cooldown_seconds")
# When a deal opens: "asap" at the first candle close without a deal (the default, and
# what every bot recorded before this field did), "signal" only on a webhook's start_deal.
START_CONDITIONS = ("asap", "signal")
_BOOL_FIELDS = ("stop_loss_to_breakeven", "trailing_stop_loss")
# Fields added after configurations were first recorded, with the value that means "not
# used": a configuration is written without them when they have it, so every configuration
# recorded before they existed is written, and replayed, byte for byte as it was.
ADDED_FIELDS: dict[str, object] = {
    "take_profit_steps": (),
    "stop_loss_to_breakeven": False,
    "trailing_stop_loss": False,
    "stop_loss_activation_pct": None,
    "start_condition": "asap",
}


@dataclass(frozen=True)
class DcaConfig:
    pair: str
    base_order_quote: Decimal
    safety_order_quote: Decimal
    max_safety_orders: int
    price_deviation_pct: Decimal
    safety_volume_scale: Decimal
    safety_step_scale: Decimal
    take_profit_pct: Decimal
    stop_loss_pct: Decimal | None = None
    trailing_take_profit_pct: Decimal | None = None
    cooldown_seconds: int = 0
    take_profit_steps: tuple[TakeProfitStep, ...] = ()
    stop_loss_to_breakeven: bool = False
    trailing_stop_loss: bool = False
    stop_loss_activation_pct: Decimal | None = None
    start_condition: str = "asap"

    @property
    def waits_for_signal(self) -> bool:
        return self.start_condition == "signal"

    def __post_init__(self) -> None:
        violations = config_violations(self)
        if violations:
            raise InvalidConfigError(violations)

    @classmethod
    def restore(cls, values: Mapping[str, object]) -> DcaConfig:
        """Rebuild a configuration recorded in the past without judging it by today's rules:
        the log outlives the code, and a rule tightened later must not make old bots
        unloadable."""
        config = cls.__new__(cls)
        for f in fields(cls):
            object.__setattr__(config, f.name, values.get(f.name, f.default))
        steps = values.get("take_profit_steps") or ()
        object.__setattr__(config, "take_profit_steps", tuple(
            s if isinstance(s, TakeProfitStep) else TakeProfitStep(s["pct"], s["volume_pct"])
            for s in steps))
        return config

    def recorded(self) -> dict[str, object]:
        """What an event records: every field, less the added ones left unused."""
        values: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ADDED_FIELDS and value == ADDED_FIELDS[f.name]:
                continue
            if f.name == "take_profit_steps":
                value = [{"pct": s.pct, "volume_pct": s.volume_pct} for s in value]
            values[f.name] = value
        return values

    @property
    def plain_exits(self) -> bool:
        """No exit rule beyond one take profit and one fixed stop (the engine's fast path)."""
        return (self.trailing_take_profit_pct is None and not self.take_profit_steps
                and not self.trailing_stop_loss and not self.stop_loss_to_breakeven)

    @property
    def base_asset(self) -> str:
        return self.pair.split("/")[0]

    @property
    def quote_asset(self) -> str:
        return self.pair.split("/")[1]

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> DcaConfig:
        """Parse user input (a bot.json). Every violated rule is reported, not just the first."""
        violations: list[DomainError] = []
        known = [f.name for f in fields(cls)]
        violations += [
            DomainError(f"unknown field {name!r}", code="UNKNOWN_FIELD", field=name)
            for name in data
            if name not in known
        ]
        values: dict[str, object] = {}
        for name in known:
            if name not in data or data[name] is None:
                if name == "take_profit_pct" and data.get("take_profit_steps"):
                    continue  # the steps replace it (the first step's pct stands for it)
                if name in (*_DECIMAL_FIELDS, "pair", "max_safety_orders"):
                    violations.append(
                        DomainError("is required", code="MISSING_FIELD", field=name)
                    )
                continue
            try:
                values[name] = _parse_field(name, data[name])
            except DomainError as error:
                violations.append(error)
        if violations:
            raise InvalidConfigError(violations)
        steps = values.get("take_profit_steps")
        if steps and "take_profit_pct" not in values:
            values["take_profit_pct"] = steps[0].pct
        return cls(**values)  # type: ignore[arg-type]

    def to_mapping(self) -> dict[str, object]:
        """JSON-ready form (Decimals as strings), the inverse of :meth:`from_mapping`."""
        values = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}
        values["take_profit_steps"] = [s.to_mapping() for s in self.take_profit_steps]
        return values


def _parse_field(name: str, raw: object) -> object:
    if name == "pair":
        if not isinstance(raw, str):
            raise DomainError("must be a string like 'BTC/USDT'", code="INVALID_PAIR", field=name)
        return checked_text(raw, name, max_chars=PAIR_MAX).strip().upper()
    # Digits and exponent here; each field's range is a rule (config_violations), so a
    # configuration built in code is held to it as well.
    if name in _INT_FIELDS:
        return parse_whole(raw, name)
    if name == "start_condition":
        if not isinstance(raw, str):
            raise DomainError(f"must be one of {', '.join(START_CONDITIONS)}",
                              code="INVALID_START_CONDITION", field=name)
        return raw.strip().lower()
    if name in _BOOL_FIELDS:
        if not isinstance(raw, bool):
            raise DomainError("must be true or false", code="INVALID_BOOLEAN", field=name)
        return raw
    if name == "take_profit_steps":
        return parse_steps(raw)
    return parse_number(raw, name)


def _rule(ok: bool, field: str, code: str, message: str) -> list[DomainError]:
    return [] if ok else [DomainError(message, code=code, field=field)]


def config_violations(c: DcaConfig) -> list[DomainError]:
    """Every rule the configuration breaks, each with its own code and field."""
    parts = c.pair.split("/") if isinstance(c.pair, str) else []
    errors = _rule(
        len(parts) == 2 and all(parts), "pair", "INVALID_PAIR", "must look like 'BTC/USDT'"
    )
    errors += _bounded(c, "base_order_quote")
    errors += _rule(
        0 <= c.max_safety_orders <= MAX_SAFETY_ORDERS_LIMIT,
        "max_safety_orders",
        "OUT_OF_RANGE",
        f"must be between 0 and {MAX_SAFETY_ORDERS_LIMIT}",
    )
    if c.max_safety_orders or c.safety_order_quote:  # unused without safety orders
        errors += _bounded(c, "safety_order_quote")
    for name in ("price_deviation_pct", "safety_volume_scale", "safety_step_scale",
                 "take_profit_pct", "stop_loss_pct", "trailing_take_profit_pct"):
        if name != "take_profit_pct" or not c.take_profit_steps:  # (the steps judge theirs)
            errors += _bounded(c, name)
    judged = {"take_profit_pct", "trailing_take_profit_pct"}
    if c.trailing_take_profit_pct is not None and not any(e.field in judged for e in errors):
        errors += _rule(
            c.trailing_take_profit_pct < c.take_profit_pct,
            "trailing_take_profit_pct",
            "OUT_OF_RANGE",
            "must be > 0 and below take_profit_pct",
        )
    errors += _bounded(c, "stop_loss_activation_pct")
    errors += exit_violations(c)
    errors += _rule(c.cooldown_seconds >= 0, "cooldown_seconds", "NEGATIVE", "must be >= 0")
    errors += _rule(c.cooldown_seconds <= MAX_COOLDOWN_SECONDS, "cooldown_seconds",
                    "OUT_OF_RANGE", f"must be at most {MAX_COOLDOWN_SECONDS} (a year)")
    errors += _rule(c.start_condition in START_CONDITIONS, "start_condition",
                    "INVALID_START_CONDITION", f"must be one of {', '.join(START_CONDITIONS)}")
    if not errors and c.max_safety_orders > 0:
        deepest = safety_deviation_pct(c, c.max_safety_orders)
        errors += _rule(
            deepest < HUNDRED,
            "price_deviation_pct",
            "LADDER_BELOW_ZERO",
            f"the deepest safety order would be {deepest}% below the entry, at or below zero",
        )
    return errors


def _bounded(c: DcaConfig, name: str) -> list[DomainError]:
    value = getattr(c, name)
    if value is None:  # the optional ones
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        return [DomainError(f"expected a finite Decimal, got {value!r}",
                            code="INVALID_NUMBER", field=name)]
    return FIELD_BOUNDS[name].violations(value, name)


def safety_deviation_pct(c: DcaConfig, n: int) -> Decimal:
    """Deviation in % of safety order ``n`` below the base fill price."""
    total, step = ZERO, ONE
    for _ in range(n):
        total += step
        step *= c.safety_step_scale
    return c.price_deviation_pct * total


@dataclass(frozen=True)
class LadderLevel:
    """One order of the ladder; level 0 is the base order. Totals include this level."""

    n: int
    deviation_pct: Decimal
    price: Decimal
    quote: Decimal
    units: Decimal
    total_quote: Decimal
    total_units: Decimal
    average_price: Decimal
    take_profit_price: Decimal
    stop_loss_price: Decimal | None


def ladder(config: DcaConfig, base_price: Decimal) -> list[LadderLevel]:
    """The base order and every safety order, with the position after each has filled."""
    base_price = to_decimal(base_price, "price")
    if base_price <= ZERO:
        raise DomainError("must be > 0", code="NOT_POSITIVE", field="price")
    levels: list[LadderLevel] = []
    total_quote = total_units = ZERO
    for n, deviation, factor, quote in _shape(config):
        price = base_price * factor
        units = quote / price
        total_quote += quote
        total_units += units
        average = total_quote / total_units
        levels.append(
            LadderLevel(
                n=n,
                deviation_pct=deviation,
                price=price,
                quote=quote,
                units=units,
                total_quote=total_quote,
                total_units=total_units,
                average_price=average,
                take_profit_price=take_profit_price(config, average),
                stop_loss_price=stop_loss_price(config, average),
            )
        )
    return levels


def safety_orders(config: DcaConfig, base_price: Decimal) -> list[tuple[int, Decimal, Decimal]]:
    """``(n, price, units)`` of each safety order, exactly as :func:`ladder` has them,
    without the position totals: what the engine places when every deal opens."""
    orders = []
    for n, _, factor, quote in _shape(config)[1:]:
        price = base_price * factor
        orders.append((n, price, quote / price))
    return orders


_SHAPES: dict[int, tuple[DcaConfig, tuple[tuple[int, Decimal, Decimal, Decimal], ...]]] = {}
# A paper runner holds one configuration object per bot it follows (10,000 in issue 15):
# kept for 256 they were forgotten every 256 deals and worked out again at nearly every
# deal (4.9 us instead of 1.6 a ladder). What an entry keeps alive is a configuration, and
# those of followed bots are alive anyway.
_SHAPES_KEPT = 16_384


def _shape(config: DcaConfig) -> tuple[tuple[int, Decimal, Decimal, Decimal], ...]:
    """Per level: ``(n, deviation %, price / base price, quote)``; they depend on the
    configuration alone, so each configuration object works them out once. (Not cached by
    equality: ``Decimal("50") == Decimal("50.0")``, but events write them differently.)"""
    known = _SHAPES.get(id(config))
    if known is not None and known[0] is config:
        return known[1]
    levels = []
    deviation, step, quote = ZERO, ONE, config.base_order_quote
    for n in range(config.max_safety_orders + 1):
        if n == 1:
            quote = config.safety_order_quote
        elif n > 1:
            quote *= config.safety_volume_scale
        if n >= 1:
            deviation += config.price_deviation_pct * step
            step *= config.safety_step_scale
        levels.append((n, deviation, ONE - deviation / HUNDRED, quote))
    if len(_SHAPES) >= _SHAPES_KEPT:
        _SHAPES.clear()
    shape = _SHAPES[id(config)] = (config, tuple(levels))
    return shape[1]


def take_profit_price(config: DcaConfig, average: Decimal) -> Decimal:
    return average * (ONE + config.take_profit_pct / HUNDRED)


def stop_loss_price(config: DcaConfig, average: Decimal) -> Decimal | None:
    if config.stop_loss_pct is None:
        return None
    return average * (ONE - config.stop_loss_pct / HUNDRED)
