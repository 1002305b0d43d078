"""``dcaPlan(config, price)``: the safety-order ladder a configuration makes from an entry
price (pure arithmetic: no account needed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from api.graphql.bots.inputs import DcaConfigInput
from api.graphql.common import Errors, FieldError, camel, field_error
from api.graphql.permissions import Public
from domain.dca import ladder
from domain.errors import DomainError, InvalidConfigError
from domain.numbers import PRICE, parse_number


@strawberry.type
class DcaLevel:
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


@strawberry.type
class DcaPlan:
    pair: str
    levels: list[DcaLevel]


@strawberry.type
class InputErrors(Errors):
    """A refused command's errors."""

LEVEL_FIELDS = ("n", "deviation_pct", "price", "quote", "units", "total_quote", "total_units",
                "average_price", "take_profit_price", "stop_loss_price")
DcaPlanResult = Annotated[DcaPlan | InputErrors, strawberry.union("DcaPlanResult")]


def config_errors(error: InvalidConfigError) -> list[FieldError]:
    """One INVALID_CONFIG error per violated rule, naming the input field."""
    return [FieldError(code="INVALID_CONFIG", message=v.message, field=camel(v.field),
                       rule=v.code) for v in error.violations]


@strawberry.type
class PlanQueries:
    @strawberry.field(permission_classes=[Public])
    def dca_plan(self, config: DcaConfigInput, price: str) -> DcaPlanResult:
        try:
            levels = ladder(config.to_config(), parse_number(price, "price", PRICE))
        except InvalidConfigError as error:
            return InputErrors.of(config_errors(error))
        except DomainError as error:
            return InputErrors.of([field_error(error)])
        return DcaPlan(pair=config.pair.strip().upper(), levels=[
            DcaLevel(**{name: getattr(level, name) for name in LEVEL_FIELDS})
            for level in levels])
