"""BacktestRun: what a stored backtest ran on, so it can be re-run and compared later."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.dca import DcaConfig
from domain.errors import InvalidTransitionError
from domain.recording import Cause, TradetapeAggregate

# The owner of a backtest's bot, deals and orders (recorded in their events since the first
# version): a run belongs to the backtest, not to a user's portfolio. User-facing views
# leave these out unless asked.
BACKTEST_OWNER = "backtest"


class BacktestRun(TradetapeAggregate):
    run_seed: str
    bot_id: UUID
    candles_source: str
    candles_sha256: str | None
    candles_count: int
    config: DcaConfig
    fee_rate: Decimal
    balance: Decimal | None
    summary: dict[str, Any] | None
    interruption: str | None  # why the run stopped before its end, if it did
    period: tuple[int | None, int | None] | None  # (from, to) UTC ms, when one was chosen

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Started(TradetapeAggregate.Created, Event):
        run_seed: str
        bot_id: UUID
        candles_source: str
        candles_sha256: str | None
        candles_count: int
        config: DcaConfig
        fee_rate: Decimal
        balance: Decimal | None

        def apply(self, run: BacktestRun) -> None:
            for name in (
                "run_seed", "bot_id", "candles_source", "candles_sha256", "candles_count",
                "config", "fee_rate", "balance",
            ):
                setattr(run, name, getattr(self, name))
            run.summary = run.interruption = run.period = None

    class PeriodChosen(Event):
        """The run covers only the candles opening from ``from_ms`` (inclusive) until
        ``to_ms`` (exclusive) of its file; None: unbounded. Recorded right after Started,
        only when a period was chosen (runs without one record what they always did)."""

        from_ms: int | None
        to_ms: int | None

        def apply(self, run: BacktestRun) -> None:
            run.period = (self.from_ms, self.to_ms)

    class Completed(Event):
        summary: dict[str, Any]

        def apply(self, run: BacktestRun) -> None:
            run.summary = self.summary

    class Interrupted(Event):
        """The run stopped before the end of its candles (stopped by its user, or an error):
        what it stored before is a prefix of what a whole run records."""

        reason: str

        def apply(self, run: BacktestRun) -> None:
            run.interruption = self.reason

    @property
    def status(self) -> str:
        """``completed``, ``interrupted``, or ``incomplete``: no end recorded (its process
        was killed, or is still running)."""
        if self.summary is not None:
            return "completed"
        return "interrupted" if self.interruption is not None else "incomplete"

    @classmethod
    def start(
        cls,
        run_id: UUID,
        cause: Cause,
        *,
        run_seed: str,
        bot_id: UUID,
        candles_source: str,
        candles_sha256: str | None,
        candles_count: int,
        config: DcaConfig,
        fee_rate: Decimal,
        balance: Decimal | None,
    ) -> BacktestRun:
        return cls._start(
            cls.Started,
            run_id,
            cause,
            run_seed=run_seed,
            bot_id=bot_id,
            candles_source=candles_source,
            candles_sha256=candles_sha256,
            candles_count=candles_count,
            config=config,
            fee_rate=fee_rate,
            balance=balance,
        )

    def choose_period(self, cause: Cause, from_ms: int | None, to_ms: int | None) -> None:
        if self.version != self.INITIAL_VERSION:
            raise InvalidTransitionError("a run's period is chosen as it starts",
                                         code="RUN_STARTED")
        self._record(self.PeriodChosen, cause, from_ms=from_ms, to_ms=to_ms)

    def complete(self, cause: Cause, summary: dict[str, Any]) -> None:
        self._require_running()
        self._record(self.Completed, cause, summary=summary)

    def interrupt(self, cause: Cause, reason: str) -> None:
        self._require_running()
        self._record(self.Interrupted, cause, reason=reason)

    def _require_running(self) -> None:
        if self.status != "incomplete":
            raise InvalidTransitionError(f"the run is {self.status}", code="RUN_ENDED")
