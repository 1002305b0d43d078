"""Deposits to and withdrawals from a paper account (``depositToPaperAccount``,
``withdrawFromPaperAccount``): recorded on the account, passed to its running venue, and
observed at once by the wallet monitor, so a funding plan the deposit covers is
``ready_to_execute`` when the command answers."""

from __future__ import annotations

import logging
from decimal import Decimal
from uuid import UUID

from application.wallet_monitor import WalletMonitor
from domain.accounts import AccountKind, ExchangeAccount
from domain.errors import DomainError, NotFoundError
from domain.money import ZERO
from domain.numbers import parse_number

log = logging.getLogger("tradetape.wallet")
# A paper deposit is play money, but still bounded: a typo of a few digits is not a fortune.
MAX_PAPER_AMOUNT = Decimal("1e12")


class PaperWallet:
    def __init__(self, monitor: WalletMonitor):
        self.monitor, self.trading, self.paper = monitor, monitor.trading, monitor.paper

    def deposit(self, owner_id: UUID, account_id: UUID, asset: str, amount: object,
                actor: str | None = None) -> ExchangeAccount:
        return self._move(owner_id, account_id, asset, _amount(amount), actor, deposit=True)

    def withdraw(self, owner_id: UUID, account_id: UUID, asset: str, amount: object,
                 actor: str | None = None) -> ExchangeAccount:
        """Refused (``INSUFFICIENT_FUNDS``) beyond what the account has free of ``asset``."""
        return self._move(owner_id, account_id, asset, _amount(amount), actor, deposit=False)

    def _move(self, owner_id: UUID, account_id: UUID, asset: str, amount: Decimal,
              actor: str | None, *, deposit: bool) -> ExchangeAccount:
        with self.paper.lock:
            account = self._paper_account(owner_id, account_id)
            cause = self.trading.cause(actor or str(owner_id))
            asset = str(asset).strip().upper()
            if deposit:
                account.deposit(cause, asset, amount)
            else:
                free = self.paper.paper_wallet(str(account_id)).get(asset)
                if free is None or free.free < amount:
                    raise DomainError(
                        f"the account has {free.free if free else ZERO} {asset} free",
                        code="INSUFFICIENT_FUNDS", field="amount")
                account.withdraw(cause, asset, amount)
            self.trading.append(account)
            self.paper.credit_paper(str(account_id), asset, amount if deposit else -amount)
            log.info("paper %s account=%s asset=%s amount=%s",
                     "deposit" if deposit else "withdrawal", account_id, asset, amount)
            self.monitor.observe(account_id, cause.at)
            return self.trading.get_account(account_id)

    def _paper_account(self, owner_id: UUID, account_id: UUID) -> ExchangeAccount:
        try:
            account = self.trading.get_account(account_id)
        except NotFoundError:
            account = None
        if account is None or account.owner_id != str(owner_id):
            raise NotFoundError(f"no exchange account {account_id}", field="account_id")
        if account.kind is not AccountKind.PAPER:
            raise DomainError("only a paper account takes deposits here: fund a live "
                              "account on its exchange", code="ACCOUNT_NOT_PAPER",
                              field="account_id")
        return account


def _amount(raw: object) -> Decimal:
    amount = parse_number(raw, "amount")
    if amount <= ZERO:
        raise DomainError("must be > 0", code="NOT_POSITIVE", field="amount")
    if amount > MAX_PAPER_AMOUNT:
        raise DomainError(f"at most {MAX_PAPER_AMOUNT:f}", code="OUT_OF_RANGE", field="amount")
    return amount
