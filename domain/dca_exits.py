"""The exit options of a DCA configuration (issue 12): take profit steps and the rules that
relate them to the other exits (break-even, trailing stop loss, its activation). Each broken
rule is its own named error, so a user sees every one at once."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING

from domain.errors import DomainError
from domain.money import HUNDRED, ZERO
from domain.numbers import Bounds, parse_number

if TYPE_CHECKING:
    from domain.dca import DcaConfig

D = Decimal
MAX_TAKE_PROFIT_STEPS = 4
STEP_BOUNDS = {"pct": Bounds(D("0.0001"), D(1000), sign_code="NOT_POSITIVE"),
               "volume_pct": Bounds(D("0.0001"), HUNDRED, sign_code="NOT_POSITIVE")}


@dataclass(frozen=True)
class TakeProfitStep:
    """Sell ``volume_pct`` % of the units held when the first step filled, at
    average × (1 + ``pct``/100)."""

    pct: Decimal
    volume_pct: Decimal

    def to_mapping(self) -> dict[str, str]:
        return {"pct": str(self.pct), "volume_pct": str(self.volume_pct)}


def parse_steps(raw: object) -> tuple[TakeProfitStep, ...]:
    field = "take_profit_steps"
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise DomainError('must be a list of {"pct": ..., "volume_pct": ...}',
                          code="INVALID_STEPS", field=field)
    if len(raw) > MAX_TAKE_PROFIT_STEPS:  # before parsing a long list
        raise DomainError(f"at most {MAX_TAKE_PROFIT_STEPS} steps", code="TOO_MANY_STEPS",
                          field=field)
    steps = []
    for i, step in enumerate(raw, 1):
        if set(step) != {"pct", "volume_pct"}:
            raise DomainError(f'step {i} must have exactly "pct" and "volume_pct"',
                              code="INVALID_STEPS", field=field)
        steps.append(TakeProfitStep(parse_number(step["pct"], f"{field}[{i}].pct"),
                                    parse_number(step["volume_pct"],
                                                 f"{field}[{i}].volume_pct")))
    return tuple(steps)


def _rule(ok: bool, field: str, code: str, message: str) -> list[DomainError]:
    return [] if ok else [DomainError(message, code=code, field=field)]


def exit_violations(c: DcaConfig) -> list[DomainError]:
    """The rules between the exit options (issue 12), each named by its own code."""
    steps = c.take_profit_steps
    errors = _step_violations(steps) if steps else []
    if steps:
        errors += _rule(c.trailing_take_profit_pct is None, "take_profit_steps",
                        "STEPS_WITH_TRAILING_TAKE_PROFIT",
                        "take_profit_steps cannot be combined with trailing_take_profit_pct")
        errors += _rule(c.take_profit_pct == steps[0].pct, "take_profit_pct",
                        "STEPS_REPLACE_TAKE_PROFIT",
                        "take_profit_steps replace take_profit_pct: leave it out")
    errors += _rule(not c.stop_loss_to_breakeven or bool(steps), "stop_loss_to_breakeven",
                    "BREAKEVEN_NEEDS_STEPS", "stop_loss_to_breakeven needs take_profit_steps")
    errors += _rule(not c.trailing_stop_loss or c.stop_loss_pct is not None,
                    "trailing_stop_loss", "TRAILING_STOP_NEEDS_STOP_LOSS",
                    "trailing_stop_loss needs stop_loss_pct")
    errors += _rule(c.stop_loss_activation_pct is None or c.trailing_stop_loss,
                    "stop_loss_activation_pct", "ACTIVATION_NEEDS_TRAILING_STOP",
                    "stop_loss_activation_pct needs trailing_stop_loss")
    return errors


def _step_violations(steps: tuple[TakeProfitStep, ...]) -> list[DomainError]:
    field = "take_profit_steps"
    errors = _rule(len(steps) <= MAX_TAKE_PROFIT_STEPS, field, "TOO_MANY_STEPS",
                   f"at most {MAX_TAKE_PROFIT_STEPS} steps")
    for i, step in enumerate(steps, 1):
        for name in ("pct", "volume_pct"):
            value = getattr(step, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                errors.append(DomainError(f"step {i}: {name} must be a finite Decimal",
                                          code="INVALID_NUMBER", field=field))
            else:
                errors += STEP_BOUNDS[name].violations(value, f"{field}[{i}].{name}")
    if errors:
        return errors
    errors += _rule(all(a.pct < b.pct for a, b in pairwise(steps)), field,
                    "STEPS_NOT_INCREASING", "each step's pct must be above the one before")
    total = sum((s.volume_pct for s in steps), ZERO)
    errors += _rule(total == HUNDRED, field, "STEPS_VOLUME_NOT_100",
                    f"the steps' volume_pct must add up to exactly 100, not {total}")
    return errors
