"""Exchange accounts: live accounts added with their API keys, listed, checked, removed.

The keys are checked with an authenticated call (``ExchangeConnector.verify``) BEFORE
anything is stored: a refusal is one named error and records nothing. What is stored is
sealed under the owner's data key (``DataKeyStore``, purpose ``exchange-api-key`` ...), so
the log holds ciphertext only and ``tradetape keys rotate`` (which re-wraps the data keys)
covers them. The live runner asks this service for an account's keys in the clear
(:meth:`ExchangeAccounts.credentials`), in memory only.

Live (non-sandbox) trading is the server's choice (``TRADETAPE_ALLOW_LIVE=1``):
:func:`trading_refusal` is the rule, checked before a bot starts on an account.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.utils import get_topic

from application.replay import stored_fields
from application.trading import Trading
from application.user_views import bots_owned_by
from domain.accounts import AccountKind, ExchangeAccount, SealedKeys, account_name
from domain.bots import BotStatus
from domain.errors import DomainError, NotFoundError
from domain.ports import ApiCredentials, Balance, DataKeyStore, ExchangeConnector
from domain.text import EXCHANGE_NAME_MAX, checked_text

log = logging.getLogger("tradetape.accounts")

# What each sealed key is bound to (AES-GCM associated data): a sealed secret cannot be
# passed off as an API key, nor as another user's.
PURPOSES = ("exchange-api-key", "exchange-secret", "exchange-password")
KEY_MAX_CHARS = 512
DEFAULT_QUOTE = "USDT"
# The check outcome each exchange error code is recorded as (``Checked.status``).
STATUS_OF_CODE = {"EXCHANGE_AUTH_FAILED": "auth_failed",
                  "EXCHANGE_PERMISSION_DENIED": "permission_denied",
                  "EXCHANGE_UNAVAILABLE": "unreachable",
                  "EXCHANGE_NOT_SUPPORTED": "not_supported"}


@dataclass(frozen=True)
class AccountView:
    """An exchange account as its owner may see it: never a key, sealed or not.
    ``balances``: what the exchange last reported (live accounts); ``status``: ``ok``,
    ``auth_failed``, ``permission_denied``, ``unreachable``, ... (``paper`` for a paper
    account), as of ``checked_at``; ``last_sync_at``: the last successful check."""

    id: UUID
    owner_id: str
    kind: AccountKind
    exchange: str
    name: str
    sandbox: bool
    quote_asset: str
    status: str
    checked_at: datetime | None
    last_sync_at: datetime | None
    balances: dict[str, Balance]
    removed: bool
    opened_at: datetime

    @property
    def live(self) -> bool:
        return self.kind is AccountKind.LIVE


def view_of(account: ExchangeAccount) -> AccountView:
    live = account.kind is AccountKind.LIVE
    return AccountView(
        id=account.id, owner_id=account.owner_id, kind=account.kind,
        exchange=account.exchange, name=account.name or "paper",
        sandbox=account.sandbox, quote_asset=account.quote_asset,
        status=account.status if live else "paper", checked_at=account.checked_at,
        last_sync_at=account.synced_at,
        balances={asset: Balance(free, locked)
                  for asset, (free, locked) in sorted(account.observed.items())},
        removed=account.removed, opened_at=account.created_on)


def trading_refusal(account: ExchangeAccount, allow_live: bool) -> DomainError | None:
    """Why no bot may start trading on ``account`` (None: it may). A removed account never
    trades; a live account on the exchange's real (non-sandbox) side only where the server
    allows live trading (``TRADETAPE_ALLOW_LIVE=1``)."""
    if account.kind is not AccountKind.LIVE:
        return None
    if account.removed:
        return DomainError("the exchange account was removed", code="ACCOUNT_REMOVED",
                           field="exchange_account_id")
    if not account.sandbox and not allow_live:
        return DomainError(
            f"{account.name} trades real money on {account.exchange}: this server allows "
            "sandbox accounts only (set TRADETAPE_ALLOW_LIVE=1 to trade live)",
            code="LIVE_TRADING_DISABLED", field="exchange_account_id")
    return None


class ExchangeAccounts:
    """``ExchangeAccounts(trading, keys, connector, allow_live=...)``, or
    ``bootstrap_identity.open_exchange_accounts``."""

    def __init__(self, trading: Trading, keys: DataKeyStore, connector: ExchangeConnector,
                 *, allow_live: bool = False, quote_asset: str = DEFAULT_QUOTE):
        self.trading, self._keys, self._connector = trading, keys, connector
        self.allow_live, self.quote_asset = allow_live, quote_asset
        # The owners' plans (``application.entitlements``), set where billing is wired;
        # None: no plan limits.
        self.entitlements = None

    # --- commands -------------------------------------------------------------------------

    def add(self, owner_id: UUID, *, exchange: str, sandbox: bool, api_key: str, secret: str,
            password: str | None = None, name: str | None = None,
            actor: str | None = None) -> AccountView:
        """A live account, once its keys answered an authenticated call; stored with the
        balances that call reported. A refusal raises its code and stores nothing."""
        exchange = _exchange_id(exchange)
        name = account_name(name if name is not None else
                            f"{exchange} sandbox" if sandbox else exchange)
        credentials = ApiCredentials(_key(api_key, "api_key"), _key(secret, "secret"),
                                     _key(password, "password") if password else None)
        if self.entitlements is not None and not sandbox:  # a live account: a paid feature
            self.entitlements.check_feature(owner_id, "live_trading")
        sealed = self._seal(owner_id, credentials)  # DATA_KEY_MISSING before any request
        balances = self._ask(exchange, sandbox, credentials)
        cause = self.trading.cause(actor or str(owner_id))
        account = ExchangeAccount.open(self.trading.ids.new_id(), cause,
                                       owner_id=str(owner_id), kind=AccountKind.LIVE,
                                       exchange=exchange, quote_asset=self.quote_asset)
        account.connect(cause, name=name, sandbox=sandbox, keys=sealed)
        _record_balances(account, cause, balances)
        self.trading.save_all(account)
        log.info("exchange account added id=%s exchange=%s sandbox=%s assets=%d",
                 account.id, exchange, _yes(sandbox), len(balances))
        return view_of(account)

    def sync(self, owner_id: UUID, account_id: UUID, actor: str | None = None
             ) -> AccountView:
        """Ask the exchange for the balances now: recorded as ``BalanceObserved`` (every
        asset it reports, and zero for an asset it stopped reporting) with a ``Checked``
        (``ok``). A failed call records its ``Checked`` status (``auth_failed``,
        ``unreachable``...) and raises its code."""
        account = self._owned(owner_id, account_id, live=True)
        credentials = self._unsealed(account)
        cause = self.trading.cause(actor or str(owner_id))
        try:
            balances = self._ask(account.exchange, account.sandbox, credentials)
        except DomainError as error:
            account.record_check(cause, STATUS_OF_CODE.get(error.code, "error"), error.code)
            self.trading.save_all(account)
            raise
        _record_balances(account, cause, balances)
        self.trading.save_all(account)
        return view_of(account)

    def remove(self, owner_id: UUID, account_id: UUID, actor: str | None = None
               ) -> AccountView:
        """Refused (``ACCOUNT_IN_USE``, naming the bots) while a bot runs on it."""
        account = self._owned(owner_id, account_id, live=True)
        running = self._running_bots(account)
        if running:
            raise DomainError(
                f"stop or pause the bots running on it first: {', '.join(running)}",
                code="ACCOUNT_IN_USE", field="id")
        account.remove(self.trading.cause(actor or str(owner_id)))
        self.trading.save_all(account)
        log.info("exchange account removed id=%s exchange=%s sandbox=%s", account.id,
                 account.exchange, _yes(account.sandbox))
        return view_of(account)

    # --- queries --------------------------------------------------------------------------

    def list(self, owner_id: UUID) -> list[AccountView]:
        """The owner's accounts that were not removed, paper ones included, oldest first."""
        found = (self.trading.get_account(i) for i in account_ids_of(self.trading,
                                                                       str(owner_id)))
        return [view_of(a) for a in found if not a.removed]

    def get(self, owner_id: UUID, account_id: UUID) -> AccountView:
        """NOT_FOUND for an account that is not the owner's (or was removed)."""
        return view_of(self._owned(owner_id, account_id))

    def live_accounts(self) -> list[AccountView]:
        """Every owner's live accounts that were not removed (the server's start line)."""
        found = (self.trading.get_account(oid) for oid, data in _opened(self.trading)
                 if _kind_of(data) == AccountKind.LIVE.value)
        return [view_of(a) for a in found if not a.removed]

    def trading_line(self, sandbox_host: str | None = None) -> str:
        """What the server says at start: its live accounts, sandbox or not, and whether
        live trading is allowed."""
        accounts = self.live_accounts()
        sandbox = sum(1 for a in accounts if a.sandbox)
        where = f" on {sandbox_host}" if sandbox_host else ""
        rule = ("live trading ALLOWED (TRADETAPE_ALLOW_LIVE=1)" if self.allow_live
                else "live trading off: sandbox only")
        return (f"exchange accounts: {sandbox} sandbox{where}, "
                f"{len(accounts) - sandbox} live; {rule}")

    def account(self, account_id: UUID) -> AccountView:
        """Any account, by id (the live runner's lookup: exchange, sandbox, status)."""
        return view_of(self.trading.get_account(account_id))

    def credentials(self, account_id: UUID) -> ApiCredentials:
        """A live account's keys in the clear, for the live runner to build its exchange
        client: keep them in memory only (the object hides them from ``repr``).
        ``ACCOUNT_NOT_LIVE``, ``ACCOUNT_REMOVED``, ``ACCOUNT_KEYS_GONE`` (owner forgotten)."""
        account = self.trading.get_account(account_id)
        if account.kind is not AccountKind.LIVE or account.sealed_keys is None:
            raise DomainError("a paper account has no keys", code="ACCOUNT_NOT_LIVE")
        if account.removed:
            raise DomainError("the exchange account was removed", code="ACCOUNT_REMOVED")
        return self._unsealed(account)

    def fetch_balances(self, account_id: UUID) -> dict[str, Balance]:
        """A live account's balances now, through the exchange (the wallet monitor's
        call): nothing is recorded here; a refusal raises its code."""
        account = self.trading.get_account(account_id)
        return self._ask(account.exchange, account.sandbox, self._unsealed(account))

    def check_can_trade(self, account_id: UUID) -> None:
        """Raises :func:`trading_refusal`'s error (``ACCOUNT_REMOVED``,
        ``LIVE_TRADING_DISABLED``) for this server's ``allow_live``."""
        refusal = trading_refusal(self.trading.get_account(account_id), self.allow_live)
        if refusal is not None:
            raise refusal

    # --- plumbing -------------------------------------------------------------------------

    def _ask(self, exchange: str, sandbox: bool,
             credentials: ApiCredentials) -> dict[str, Balance]:
        try:
            return self._connector.verify(exchange, sandbox, credentials)
        except DomainError as error:
            # One line, the code and where: never the keys (nor the exchange's answer).
            log.warning("exchange account check refused code=%s exchange=%s sandbox=%s",
                        error.code, exchange, _yes(sandbox))
            raise

    def _owned(self, owner_id: UUID, account_id: UUID, live: bool = False
               ) -> ExchangeAccount:
        try:
            account = self.trading.get_account(account_id)
        except NotFoundError:
            account = None
        if account is None or account.owner_id != str(owner_id) or account.removed:
            raise NotFoundError(f"no exchange account {account_id}", field="id")
        if live and account.kind is not AccountKind.LIVE:
            raise DomainError("a paper account has no exchange to ask or keys to remove",
                              code="ACCOUNT_NOT_LIVE", field="id")
        return account

    def _seal(self, owner_id: UUID, credentials: ApiCredentials) -> SealedKeys:
        seal = self._keys.seal
        api_key, secret, password = PURPOSES
        return SealedKeys(seal(owner_id, api_key, credentials.api_key),
                          seal(owner_id, secret, credentials.secret),
                          None if credentials.password is None
                          else seal(owner_id, password, credentials.password))

    def _unsealed(self, account: ExchangeAccount) -> ApiCredentials:
        owner, sealed = UUID(account.owner_id), account.sealed_keys
        assert sealed is not None
        unseal = self._keys.unseal
        api_key = unseal(owner, PURPOSES[0], sealed.api_key)
        secret = unseal(owner, PURPOSES[1], sealed.secret)
        password = (None if sealed.password is None
                    else unseal(owner, PURPOSES[2], sealed.password))
        if api_key is None or secret is None or (sealed.password and password is None):
            raise DomainError("the account's keys cannot be read any more (its owner was "
                              "forgotten)", code="ACCOUNT_KEYS_GONE")
        return ApiCredentials(api_key, secret, password)

    def _running_bots(self, account: ExchangeAccount) -> list[str]:
        running = []
        for bot_id in bots_owned_by(self.trading, account.owner_id):
            bot = self.trading.get_bot(bot_id)
            if (bot.exchange_account_id == str(account.id)
                    and bot.status is BotStatus.RUNNING):
                running.append(f"{bot.name} ({bot.id})")
        return running


def all_account_ids(trading: Trading) -> list[UUID]:
    """Every account ever opened, oldest first (the wallet monitor's round)."""
    return [oid for oid, _ in _opened(trading)]


def account_ids_of(trading: Trading, owner_id: str) -> list[UUID]:
    """Every account ``owner_id`` ever opened, oldest first: found by the owner field of
    ``ExchangeAccount.Opened`` events (plain text in every version), until a read model
    serves it."""
    return [oid for oid, data in _opened(trading) if data.get("owner_id") == owner_id]


def _opened(trading: Trading) -> Iterator[tuple[UUID, dict]]:
    return stored_fields(trading, get_topic(ExchangeAccount.Opened))


def _kind_of(opened: dict) -> str | None:
    """The kind as stored: an enum is written as ``{"_type_": ..., "_data_": "live"}``."""
    kind = opened.get("kind")
    return kind.get("_data_") if isinstance(kind, dict) else kind


def _record_balances(account: ExchangeAccount, cause, balances: dict[str, Balance]) -> None:
    account.record_check(cause, "ok")
    gone = {asset: Balance(Decimal(0)) for asset in account.observed if asset not in balances}
    for asset, balance in sorted({**gone, **balances}.items()):
        account.observe_balance(cause, asset, balance.free, balance.locked)


def _exchange_id(exchange: str) -> str:
    text = checked_text(exchange, "exchange", max_chars=EXCHANGE_NAME_MAX).strip().lower()
    if not text:
        raise DomainError("name the exchange as ccxt does, e.g. binance",
                          code="INVALID_EXCHANGE", field="exchange")
    return text


def _key(value: str | None, field: str) -> str:
    """A key as typed: plain text of at most 512 characters. The message never quotes it."""
    if value is None or not str(value).strip():
        raise DomainError(f"give the account's {field.replace('_', ' ')}",
                          code="KEY_REQUIRED", field=field)
    return checked_text(value, field, max_chars=KEY_MAX_CHARS).strip()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
