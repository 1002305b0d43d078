"""BacktestRequest: a user asked the server to backtest a configuration (GraphQL
``runBacktest``). The run itself is a :class:`~domain.backtests.BacktestRun` owned by the
backtest, whose events stay exactly what the command line records (so ``replay --check``
re-runs it unchanged); this aggregate says whose it is and what was asked, and records a
run that could not start (its error code)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.dca import DcaConfig
from domain.errors import InvalidTransitionError
from domain.recording import Cause, TradetapeAggregate


class BacktestRequest(TradetapeAggregate):
    owner_id: str
    run_id: UUID
    candles_file: str
    pair: str
    from_ms: int | None
    to_ms: int | None
    fee_rate: Decimal
    balance: Decimal | None
    config: DcaConfig
    failure: str | None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here so the events below need not each be redefined by the library."""

    class Made(TradetapeAggregate.Created, Event):
        owner_id: str
        run_id: UUID
        candles_file: str
        pair: str
        from_ms: int | None
        to_ms: int | None
        fee_rate: Decimal
        balance: Decimal | None
        config: DcaConfig

        def apply(self, request: BacktestRequest) -> None:
            for name in ("owner_id", "run_id", "candles_file", "pair", "from_ms", "to_ms",
                         "fee_rate", "balance", "config"):
                setattr(request, name, getattr(self, name))
            request.failure = None

    class Failed(Event):
        """The run could not start or stopped on an error: ``code`` says why."""

        code: str
        message: str

        def apply(self, request: BacktestRequest) -> None:
            request.failure = self.code

    @classmethod
    def make(cls, request_id: UUID, cause: Cause, *, owner_id: str, run_id: UUID,
             candles_file: str, pair: str, period: tuple[int | None, int | None],
             fee_rate: Decimal, balance: Decimal | None, config: DcaConfig) -> BacktestRequest:
        return cls._start(cls.Made, request_id, cause, owner_id=owner_id, run_id=run_id,
                          candles_file=candles_file, pair=pair, from_ms=period[0],
                          to_ms=period[1], fee_rate=fee_rate, balance=balance, config=config)

    def fail(self, cause: Cause, code: str, message: str) -> None:
        if self.failure is not None:
            raise InvalidTransitionError("the request already failed", code="RUN_ENDED")
        self._record(self.Failed, cause, code=code, message=message[:500])
