"""What every open deal and position of each exchange account holds, whichever process
trades it: the reconciliation's expected balances (``application/reconciliation.py``).

An engine worker trades only the bots it leases, but an account's bots may be spread over
several workers, and the one that reconciles the account compares the exchange's balances
with all of them. This reads it from the log: the deals' and positions' events that change
their units, read once up to the log's head and then, each round, only the events appended
since (by any process: no scan of the whole log per round). The events stay the truth; this
only adds up their amounts as the aggregates do (``Deal``, ``Position``). Their stored
fields are read as JSON, not mapped to events (``replay.stored_fields``: the first read
goes through every deal's fills ever recorded, once per process).
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
from domain.deals import Deal
from domain.money import ZERO
from domain.positions import Position
from domain.recording import topic_of

_OPENED, _ADDED, _TAKEN, _ENDED = "opened", "added", "taken", "ended"
_KINDS = {topic_of(kind): what for what, kinds in (
    (_OPENED, (Deal.Opened, Position.Opened)), (_ADDED, (Deal.BuyFilled, Position.Bought)),
    (_TAKEN, (Deal.StepSold, Position.Sold, Position.DustLeft)),
    (_ENDED, (Deal.Closed, Deal.Cancelled, Position.Closed, Position.Cancelled)),
) for kind in kinds}
TOPICS = list(_KINDS)


class AccountHoldings:
    def __init__(self, trading: Trading):
        self.trading = trading
        self.position = 0  # the log's position read up to
        self.read_once = False  # the first read is done
        # account -> holding (a deal's or position's id) -> [base asset, units]
        self._held: dict[str, dict[UUID, list]] = {}
        self._account_of: dict[UUID, str] = {}
        self._reading = threading.Lock()

    def catch_up(self) -> int:
        """Read the events appended since the last call; returns how many were read."""
        with self._reading:
            head = self.trading.recorder.max_notification_id() or 0
            if head <= self.position:
                self.read_once = True
                return 0
            cipher, compressor = self.trading.mapper.cipher, self.trading.mapper.compressor
            read = 0
            for notification in read_log(self.trading, TOPICS, first=self.position + 1,
                                         last=head):
                data = notification.state
                if cipher is not None:
                    data = cipher.decrypt(data)
                if compressor is not None:
                    data = compressor.decompress(data)
                self._observe(notification.originator_id, _KINDS[notification.topic],
                              json.loads(data))
                read += 1
            self.position, self.read_once = head, True
            return read

    def _observe(self, holding: UUID, kind: str, fields: dict) -> None:
        if kind == _OPENED:
            account = str(fields["exchange_account_id"])
            self._account_of[holding] = account
            self._held.setdefault(account, {})[holding] = [
                fields["pair"].partition("/")[0], ZERO]
            return
        account = self._account_of.get(holding)
        if account is None:
            return  # (an event of one that ended: none follows its end)
        if kind == _ENDED:
            del self._account_of[holding]
            held = self._held[account]
            del held[holding]
            if not held:
                del self._held[account]
        elif kind == _ADDED:
            self._held[account][holding][1] += _decimal(fields["amount"])
        else:
            self._held[account][holding][1] -= _decimal(fields["amount"])

    def held(self, account_id: str) -> dict[str, Decimal]:
        """Base units the account's open deals and positions hold, by asset, as of
        ``position`` (assets held at zero included: a drift shown on one is resolved)."""
        held: dict[str, Decimal] = {}
        for asset, units in self._held.get(account_id, {}).values():
            held[asset] = held.get(asset, ZERO) + units
        return held

    def open_holdings(self) -> int:
        return len(self._account_of)


def _decimal(stored) -> Decimal:
    """A Decimal as the library's transcoder stores it (``{"_type_": "decimal_str",
    "_data_": "0.01"}``)."""
    return Decimal(stored["_data_"] if isinstance(stored, dict) else str(stored))
