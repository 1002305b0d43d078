"""A live exchange account on one pair, as the trading runner steps it.

The runner steps every market alike (``walk_candle``). On the paper venue a candle's path
fills the resting orders; on a live exchange the trading already happened, so a step asks
the exchange what became of each order we believe open (fills at the exchange's prices,
fees and times) and then shows the engines the candle's close: exits are decided on it and
sent as new orders.

Orders exactly once:
- *write-ahead*: before any request leaves, ``before_request`` stores what the engine
  decided so far, the order's ``Submitted`` event included. A process killed at any moment
  leaves either no order (never sent) or a submitted order the log knows by its client id.
- *no blind retry*: an order whose answer is unknown stays submitted; each step looks it up
  by its client id. Found, its fills are recorded; unknown to the exchange, it is ``Lost``
  and its client id is never sent again (new decisions get new ids).

A cancel the exchange refused or did not answer is never left to hang: each step fetches
the order first (its fills and its end are recorded as for any other), and the cancel is
sent again after a backoff counted in steps (1, 2, 4, ... candles; no wall clock), each
refusal one line (``CANCEL_REFUSED``). After ``CANCEL_ATTEMPTS`` the venue stops sending it
and says so once, as an error (``ORDER_NEEDS_ATTENTION``: a person should look at the order
on the exchange); the order is still fetched at every step until it ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from domain.errors import DomainError
from domain.orders import OrderSide, OrderStatus
from domain.ports import Balance, Exchange, ExchangeOrder, OrderRequest, PriceWatcher

TERMINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED,
            OrderStatus.EXPIRED, OrderStatus.LOST)
log = logging.getLogger("tradetape.live")
_ENGINE_ID = re.compile(r"[0-9a-f]{32}")
LOST_REASON = "the exchange does not know this order: it never arrived, or was lost on the way"
# Cancels sent for one order before the venue stops and asks for a person
# (ORDER_NEEDS_ATTENTION): with the backoff, the last one goes 15 steps after the first.
CANCEL_ATTEMPTS = 5


@dataclass
class _Cancel:
    """A cancel the exchange has not carried out yet: how often it was sent, and the step
    (the venue's poll count) from which it may be sent again."""

    attempts: int = 0
    due: int = 0

    @property
    def given_up(self) -> bool:
        return self.attempts >= CANCEL_ATTEMPTS


class LiveVenue:
    def __init__(self, exchange: Exchange, pair: str, *, account_id: str, sandbox: bool):
        self.exchange, self.pair = exchange, pair
        self.account_id, self.sandbox = account_id, sandbox
        self.before_request: Callable[[], None] = lambda: None  # set by the runner
        self.price: Decimal | None = None
        # client order id -> the exchange's id (None: submitted, answer not known yet)
        self._open: dict[str, str | None] = {}
        self._cancelling: dict[str, _Cancel] = {}  # cancels not carried out, by client id
        self._polls = 0  # steps so far: the clock of the cancels' backoff

    # --- the port, as the engine calls it -------------------------------------------------

    def create_order(self, request: OrderRequest) -> ExchangeOrder:
        self.before_request()
        self._open[request.client_order_id] = None
        try:
            return self._track(self.exchange.create_order(request))
        except DomainError as error:  # unreachable, its fate unknown: the next poll asks
            log.warning("order %s: no answer from the exchange: %s",
                        request.client_order_id, error)
            return ExchangeOrder("", request.client_order_id, OrderStatus.SUBMITTED,
                                 reason=str(error), observed=True)

    def cancel_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder:
        client_id = next((c for c, x in self._open.items() if x == exchange_order_id), "")
        pending = self._cancelling.get(client_id)
        if pending is None or (not pending.given_up and self._polls >= pending.due):
            update = self._send_cancel(exchange_order_id, client_id, pair)
            if update is not None:
                return update
        # not carried out (or not sent again yet): the next step fetches the order
        return ExchangeOrder(exchange_order_id, client_id, OrderStatus.SUBMITTED,
                             observed=True)

    def _send_cancel(self, exchange_order_id: str, client_id: str, pair: str
                     ) -> ExchangeOrder | None:
        """The order's state once the exchange cancelled it; None when it refused or did
        not answer (the next steps fetch the order, and send the cancel again later)."""
        self.before_request()
        try:
            update = self._track(self.exchange.cancel_order(exchange_order_id, pair))
        except DomainError as error:
            self._cancel_failed(client_id, error)
            return None
        self._cancelling.pop(client_id, None)
        return update

    def _cancel_failed(self, client_id: str, error: DomainError) -> None:
        if not client_id:  # not an order this venue follows: nothing to fetch or resend
            log.warning("a cancel was not carried out (CANCEL_REFUSED, %s): %s", error.code,
                        error)
            return
        pending = self._cancelling.setdefault(client_id, _Cancel())
        pending.attempts += 1
        pending.due = self._polls + 2 ** (pending.attempts - 1)
        if pending.given_up:
            log.error("order %s: the exchange did not cancel it after %d attempts, the last "
                      "%s: %s; no cancel is sent again, a person should look at it on the "
                      "exchange (ORDER_NEEDS_ATTENTION); each step still fetches it",
                      client_id, pending.attempts, error.code, error)
        else:
            log.warning("order %s: cancel %d of %d not carried out (CANCEL_REFUSED, %s): %s; "
                        "fetched at each step, sent again in %d steps", client_id,
                        pending.attempts, CANCEL_ATTEMPTS, error.code, error,
                        pending.due - self._polls)

    def fetch_order(self, exchange_order_id: str, pair: str) -> ExchangeOrder:
        return self._track(self.exchange.fetch_order(exchange_order_id, pair))

    def fetch_balance(self) -> dict[str, Balance]:
        return self.exchange.fetch_balance()

    def sized(self, pair: str, side: OrderSide, amount: Decimal,
              price: Decimal | None) -> tuple[Decimal, Decimal | None]:
        """The order as the exchange can take it: the amount rounded down to its step (a
        sell never exceeds the holding, a buy never the budget), a buy's price down and a
        sell's up to the tick (never a worse price than the engine chose)."""
        rules = self.exchange.market_rules(pair)
        if rules is None:
            return amount, price
        if rules.amount_step:
            amount = _to_step(amount, rules.amount_step, ROUND_DOWN)
        if price is not None and rules.price_step:
            price = _to_step(price, rules.price_step,
                             ROUND_DOWN if side is OrderSide.BUY else ROUND_UP)
        return amount, price

    # --- restoring after a restart --------------------------------------------------------

    def restore_resting(self, request: OrderRequest, exchange_order_id: str | None) -> None:
        self._open[request.client_order_id] = exchange_order_id

    def restore_position(self, position: str, units: Decimal) -> None:
        """The exchange holds the position: nothing to rebuild here."""

    # --- stepping -------------------------------------------------------------------------

    def walk_candle(self, o: Decimal, h: Decimal, low: Decimal, c: Decimal,
                    watcher: PriceWatcher) -> None:
        self.price = c
        for update in self.poll():
            watcher.on_order_update(update)
        watcher.on_price(c)

    def trigger_band(self, watcher: PriceWatcher) -> tuple[Decimal | None, Decimal | None]:
        return None, None  # every candle is a step: the exchange may have filled anything

    def poll(self) -> list[ExchangeOrder]:
        """What the exchange says now about every order we believe open. With several
        placed, one request lists those still open (untouched ones need nothing more);
        each of the others is asked about alone, with its fills."""
        self._polls += 1
        updates = []
        placed = [cid for cid, xid in self._open.items() if xid is not None]
        still_open = {}
        if len(placed) > 1:
            still_open = {o.client_order_id: o
                          for o in self.exchange.fetch_open_orders(self.pair)}
        for client_id, exchange_id in list(self._open.items()):
            listed = still_open.get(client_id)
            if exchange_id is None:
                found = self.exchange.fetch_order_by_client_id(client_id, self.pair)
                update = found if found is not None else ExchangeOrder(
                    "", client_id, OrderStatus.LOST, reason=LOST_REASON)
            elif client_id in self._cancelling:
                update = self._reconcile_cancel(client_id, exchange_id)
            elif listed is not None and listed.status is OrderStatus.ACCEPTED:
                update = listed  # open and nothing filled: nothing to record
            else:
                update = self.exchange.fetch_order(exchange_id, self.pair)
            updates.append(self._track(update))
        return updates

    def _reconcile_cancel(self, client_id: str, exchange_id: str) -> ExchangeOrder:
        """An order whose cancel was not carried out, as the exchange has it now (fills,
        or its end: then nothing more to send); its cancel sent again when due."""
        found = self.exchange.fetch_order(exchange_id, self.pair)
        if found.status in TERMINAL:
            return found  # (``_track`` forgets its cancel)
        pending = self._cancelling[client_id]
        if pending.given_up or self._polls < pending.due:
            return found
        return self._send_cancel(exchange_id, client_id, self.pair) or found

    def open_client_ids(self) -> set[str]:
        return set(self._open)

    @staticmethod
    def owns(client_order_id: str) -> bool:
        """An order Tradetape placed: the venue reports ours by the engine's id (an order
        UUID's 32 hex digits), others' by the exchange's client id as it is."""
        return _ENGINE_ID.fullmatch(client_order_id or "") is not None

    def _track(self, update: ExchangeOrder) -> ExchangeOrder:
        update = update._replace(observed=True)
        if update.client_order_id in self._open:
            if update.status in TERMINAL:
                del self._open[update.client_order_id]
                self._cancelling.pop(update.client_order_id, None)  # nothing left to cancel
            elif update.exchange_order_id and update.status is not OrderStatus.SUBMITTED:
                self._open[update.client_order_id] = update.exchange_order_id
        return update


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` in whole steps; below one step it stays as it is, for the exchange's
    minimum-amount check to refuse by name (a zero order cannot even be recorded)."""
    steps = (value / step).to_integral_value(rounding=rounding)
    return steps * step if steps else value
