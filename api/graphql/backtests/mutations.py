"""``runBacktest(input)``: checks everything it can at once (configuration, series, period,
fee rate, balance), records the request and answers the run, which goes on in the
background (watch it with ``backtestProgress``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.graphql.backtests.queries import visible
from api.graphql.backtests.types import BacktestErrors, RunBacktestResult
from api.graphql.bots.inputs import DcaConfigInput
from api.graphql.bots.plan import config_errors
from api.graphql.commands import execute
from api.graphql.common import FieldError, field_error, utc
from api.graphql.permissions import IsAuthenticated
from application.backtest_jobs import BacktestInput
from domain.errors import DomainError, InvalidConfigError
from domain.numbers import BALANCE, FEE_RATE, parse_number

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@strawberry.input(description="The candles to run on: a stored series by `file` name (see "
                  "candleFiles), or the series stored for `pair`; `from`/`to` cut it")
class BacktestCandlesInput:
    file: str | None = None
    pair: str | None = None
    from_: Annotated[datetime | None, strawberry.argument(name="from")] = strawberry.field(
        default=None, name="from")
    to: datetime | None = None


@strawberry.input
class RunBacktestInput:
    config: DcaConfigInput
    candles: BacktestCandlesInput
    fee_rate: str = strawberry.field(default="0.001", description="per fill, of notional")
    balance: str | None = strawberry.field(default=None, description=(
        "starting quote balance (default: unlimited, the capital needed is measured)"))


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else (utc(moment) - EPOCH) // timedelta(milliseconds=1)


def _series(info: Info, candles: BacktestCandlesInput) -> str:
    library = info.context.runtime.candle_library
    if candles.file is not None:
        return library.path(candles.file).name
    if not candles.pair:
        raise DomainError("name a stored series (file) or a pair", code="CANDLES_REQUIRED",
                          field="candles")
    wanted = candles.pair.strip().upper().replace("/", "_")
    for name in library.names():
        if f"_{wanted}-" in f"_{name.upper()}":
            return name
    raise DomainError(f"no stored series of {candles.pair} (candleFiles lists them)",
                      code="CANDLE_FILE_NOT_FOUND", field="candles.pair")


def _checked(info: Info, given: RunBacktestInput) -> BacktestInput | list[FieldError]:
    errors: list[FieldError] = []

    def attempt(check):
        try:
            return check()
        except InvalidConfigError as error:
            errors.extend(config_errors(error))
        except DomainError as error:
            errors.append(field_error(error))
        return None

    config = attempt(given.config.to_config)
    file = attempt(lambda: _series(info, given.candles))
    fee_rate = attempt(lambda: parse_number(given.fee_rate, "fee_rate", FEE_RATE))
    balance = attempt(lambda: None if given.balance is None else parse_number(
        given.balance, "balance", BALANCE))
    period = (_ms(given.candles.from_), _ms(given.candles.to))
    if None not in period and period[0] >= period[1]:
        errors.append(FieldError(code="INVALID_PERIOD", message="from must be before to",
                                 field="candles.to"))
    if errors:
        return errors
    return BacktestInput(config, file, config.pair, period, Decimal(fee_rate), balance)


@strawberry.type
class BacktestMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Run a backtest in the background: the run at once (status running), its progress "
        "on backtestProgress, then its summary, deals and equity curve"))
    async def run_backtest(self, info: Info, input: RunBacktestInput) -> RunBacktestResult:
        checked = _checked(info, input)
        if isinstance(checked, list):
            return BacktestErrors.of(checked)
        ctx = info.context
        run_id = await execute(ctx.runtime, lambda: ctx.runtime.backtests.submit(
            ctx.user_id, checked))
        ctx.fresh_loaders()
        return await visible(info, str(run_id))
