"""The ExchangeAccount aggregate: where an owner's money sits, on paper or on an exchange.

Balances are a read model (``projections/balances.py``): this aggregate records only the
facts that move money without an order: deposits, withdrawals and, for live accounts, the
balances the exchange reported (reconciliation).
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.errors import DomainError, InvalidTransitionError
from domain.money import ZERO, to_decimal
from domain.recording import Cause, TradetapeAggregate, ValueEnum
from domain.text import EXCHANGE_NAME_MAX, checked_text


class AccountKind(ValueEnum):
    PAPER = "paper"
    LIVE = "live"


def _asset(asset: str) -> str:
    code = asset.strip().upper()
    if not code or not code.isalnum() or len(code) > 16:
        raise DomainError(f"{asset!r} is not an asset code such as BTC", code="INVALID_ASSET",
                          field="asset")
    return code


class ExchangeAccount(TradetapeAggregate):
    owner_id: str
    kind: AccountKind
    exchange: str
    quote_asset: str

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Opened(TradetapeAggregate.Created, Event):
        owner_id: str
        kind: AccountKind
        exchange: str
        quote_asset: str

        def apply(self, account: ExchangeAccount) -> None:
            account.owner_id, account.kind = self.owner_id, self.kind
            account.exchange, account.quote_asset = self.exchange, self.quote_asset

    class Deposited(Event):
        asset: str
        amount: Decimal

    class Withdrawn(Event):
        asset: str
        amount: Decimal

    class BalanceObserved(Event):
        """What the exchange reported for ``asset``: it replaces the computed balance."""

        asset: str
        free: Decimal
        locked: Decimal

    class DriftDetected(Event):
        """The exchange holds less of ``asset`` than this account's open deals imply
        (``expected``): sold or withdrawn outside Tradetape, or a fill we never saw."""

        asset: str
        expected: Decimal
        observed: Decimal

    class DriftResolved(Event):
        asset: str
        observed: Decimal

    class StrayOrderFound(Event):
        """An open order on the exchange with our client-id prefix that the log does not
        know (adopted as an observation, then cancelled)."""

        client_order_id: str
        exchange_order_id: str
        pair: str

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def open(cls, account_id: UUID, cause: Cause, *, owner_id: str, kind: AccountKind,
             exchange: str, quote_asset: str) -> ExchangeAccount:
        exchange = checked_text(exchange, "exchange", max_chars=EXCHANGE_NAME_MAX)
        exchange = exchange.strip().lower()
        if not exchange:
            raise DomainError("name the exchange, e.g. binance or paper",
                              code="INVALID_EXCHANGE", field="exchange")
        return cls._start(cls.Opened, account_id, cause, owner_id=owner_id,
                          kind=AccountKind(kind), exchange=exchange,
                          quote_asset=_asset(quote_asset))

    def deposit(self, cause: Cause, asset: str, amount: Decimal) -> None:
        self._record(self.Deposited, cause, asset=_asset(asset),
                     amount=_positive(amount, "amount"))

    def withdraw(self, cause: Cause, asset: str, amount: Decimal) -> None:
        self._record(self.Withdrawn, cause, asset=_asset(asset),
                     amount=_positive(amount, "amount"))

    def observe_balance(self, cause: Cause, asset: str, free: Decimal, locked: Decimal) -> None:
        if self.kind is not AccountKind.LIVE:
            raise InvalidTransitionError("only a live account has balances to observe",
                                         code="ACCOUNT_NOT_LIVE")
        free, locked = to_decimal(free, "free"), to_decimal(locked, "locked")
        if free < ZERO or locked < ZERO:
            raise DomainError("balances are never negative", code="NEGATIVE_BALANCE")
        self._record(self.BalanceObserved, cause, asset=_asset(asset), free=free, locked=locked)


    def detect_drift(self, cause: Cause, asset: str, expected: Decimal,
                     observed: Decimal) -> None:
        self._record(self.DriftDetected, cause, asset=_asset(asset), expected=expected,
                     observed=observed)

    def resolve_drift(self, cause: Cause, asset: str, observed: Decimal) -> None:
        self._record(self.DriftResolved, cause, asset=_asset(asset), observed=observed)

    def found_stray_order(self, cause: Cause, client_order_id: str, exchange_order_id: str,
                          pair: str) -> None:
        self._record(self.StrayOrderFound, cause, client_order_id=client_order_id,
                     exchange_order_id=exchange_order_id, pair=pair)


def _positive(amount: Decimal, field: str) -> Decimal:
    value = to_decimal(amount, field)
    if value <= ZERO:
        raise DomainError("must be > 0", code="NOT_POSITIVE", field=field)
    return value
