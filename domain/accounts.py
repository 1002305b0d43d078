"""The ExchangeAccount aggregate: where an owner's money sits, on paper or on an exchange.

Balances are a read model (``projections/balances.py``): this aggregate records only the
facts that move money without an order: deposits, withdrawals and, for live accounts, the
balances the exchange reported (reconciliation).

A live account (``connect``) also records its name, whether it is a sandbox (testnet)
account, and its API keys SEALED under the owner's data key: the events hold ciphertext
only, never a key. Each authenticated call's outcome is ``Checked``; ``Removed`` ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


# What a live account's last authenticated call said (``Checked.status``).
STATUS_OK = "ok"
STATUS_NOT_CHECKED = "not_checked"
CHECK_STATUSES = (STATUS_OK, "auth_failed", "permission_denied", "unreachable",
                  "not_supported", "error")
ACCOUNT_NAME_MAX = 64


@dataclass(frozen=True)
class SealedKeys:
    """An account's API keys as recorded: each sealed (ciphertext) under the owner's key."""

    api_key: str
    secret: str
    password: str | None = None


class ExchangeAccount(TradetapeAggregate):
    owner_id: str
    kind: AccountKind
    exchange: str
    quote_asset: str
    name: str | None
    sandbox: bool
    sealed_keys: SealedKeys | None
    removed: bool
    status: str
    checked_at: datetime | None
    synced_at: datetime | None
    observed: dict[str, tuple[Decimal, Decimal]]  # asset -> (free, locked) last reported

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
            # A live account's own state, set by the events that follow (``Connected``...).
            account.name, account.sandbox, account.sealed_keys = None, False, None
            account.removed, account.status = False, STATUS_NOT_CHECKED
            account.checked_at = account.synced_at = None
            account.observed = {}

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

        def apply(self, account: ExchangeAccount) -> None:
            account.observed[self.asset] = (self.free, self.locked)

    class Connected(Event):
        """A live account's name, sandbox flag and keys, each key sealed (ciphertext only)."""

        name: str
        sandbox: bool
        sealed_api_key: str
        sealed_secret: str
        sealed_password: str | None

        def apply(self, account: ExchangeAccount) -> None:
            account.name, account.sandbox = self.name, self.sandbox
            account.sealed_keys = SealedKeys(self.sealed_api_key, self.sealed_secret,
                                             self.sealed_password)

    class Checked(Event):
        """The outcome of an authenticated call with the account's keys: ``ok``, or why not
        (``auth_failed``, ``unreachable``, ...) with the error's code."""

        status: str
        code: str | None

        def apply(self, account: ExchangeAccount) -> None:
            account.status, account.checked_at = self.status, self.timestamp
            if self.status == STATUS_OK:
                account.synced_at = self.timestamp

    class Removed(Event):
        """The owner removed the account: no bot may trade on it again."""

        def apply(self, account: ExchangeAccount) -> None:
            account.removed = True

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

    def connect(self, cause: Cause, *, name: str, sandbox: bool, keys: SealedKeys) -> None:
        """Make a just-opened live account usable: its name, sandbox flag, sealed keys."""
        if self.kind is not AccountKind.LIVE:
            raise InvalidTransitionError("only a live account has keys",
                                         code="ACCOUNT_NOT_LIVE")
        if self.sealed_keys is not None:
            raise InvalidTransitionError("the account already has its keys",
                                         code="ACCOUNT_ALREADY_CONNECTED")
        if not isinstance(sandbox, bool):
            raise DomainError("sandbox is true or false", code="INVALID_SANDBOX",
                              field="sandbox")
        self._record(self.Connected, cause, name=account_name(name), sandbox=sandbox,
                     sealed_api_key=keys.api_key, sealed_secret=keys.secret,
                     sealed_password=keys.password)

    def record_check(self, cause: Cause, status: str, code: str | None = None) -> None:
        self._require_live()
        if status not in CHECK_STATUSES:
            raise DomainError(f"unknown check status {status!r}", code="INVALID_STATUS")
        self._record(self.Checked, cause, status=status, code=code)

    def remove(self, cause: Cause) -> None:
        self._require_live()
        self._record(self.Removed, cause)

    def _require_live(self) -> None:
        if self.kind is not AccountKind.LIVE:
            raise InvalidTransitionError("a paper account cannot be checked or removed",
                                         code="ACCOUNT_NOT_LIVE")
        if self.removed:
            raise InvalidTransitionError("the account was removed", code="ACCOUNT_REMOVED")

    def deposit(self, cause: Cause, asset: str, amount: Decimal) -> None:
        self._record(self.Deposited, cause, asset=_asset(asset),
                     amount=_positive(amount, "amount"))

    def withdraw(self, cause: Cause, asset: str, amount: Decimal) -> None:
        self._record(self.Withdrawn, cause, asset=_asset(asset),
                     amount=_positive(amount, "amount"))

    def observe_balance(self, cause: Cause, asset: str, free: Decimal, locked: Decimal) -> None:
        """A live account's balance as the exchange reported it; a paper account's as its
        own events make it (the wallet monitor's record: it moves nothing)."""
        if self.removed:
            raise InvalidTransitionError("the account was removed", code="ACCOUNT_REMOVED")
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


def account_name(name: str) -> str:
    """A live account's name as people read it: 1 to 64 characters of plain text."""
    text = checked_text(name, "name", max_chars=ACCOUNT_NAME_MAX).strip()
    if not text:
        raise DomainError("give the account a name", code="INVALID_ACCOUNT_NAME",
                          field="name")
    return text


def _positive(amount: Decimal, field: str) -> Decimal:
    value = to_decimal(amount, field)
    if value <= ZERO:
        raise DomainError("must be > 0", code="NOT_POSITIVE", field=field)
    return value
