"""The orders an exposure check reads, each read until it is found final.

A check counts an order only while it is open (a position's entry or buy stop that may
rest, a deal's base order filled in part); one found filled, cancelled, rejected, expired
or lost never opens again (``domain.orders.TERMINAL``: no transition leaves it), so its id
is remembered for the ``Trading`` that read it and the next checks do not read it again.
The answers are the same: a final order counts nothing either way.

WHY: a position's live market entry (its ``Position.OrderPlaced`` records a judged price)
was read at every check while its position was open, long after it filled, and
``logged_exposure`` read every open deal's base order at every check (on paper, filled
at once): 10 such positions 2.3-2.9 -> 4.0-5.2 ms, 10 deals 4.4-5.5 -> 6.1-8.9 ms on
SQLite (it reads them one by one). The events say no more without a new event: a
position's ``Bought`` and a deal's ``BuyFilled`` carry what the account holds (net of a
fee taken in base), not the order's amount or what of it is left.

Bounded (``LIMIT`` ids a ``Trading``, the oldest dropped first: read again, once).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from itertools import islice
from uuid import UUID
from weakref import WeakKeyDictionary

from application.trading import Trading
from domain.orders import Order

LIMIT = 100_000  # final order ids remembered per Trading (~10 MB at most)
_final: WeakKeyDictionary[Trading, dict[UUID, None]] = WeakKeyDictionary()
_lock = threading.Lock()  # (checks run on the api's threads and the engine's)


def open_orders(trading: Trading, ids: Iterable[UUID]) -> dict[UUID, Order]:
    """Each order of ``ids`` that is open, by id: those not known final read together
    (``Trading.load_many``); those found final are remembered and left out. Raises what
    the read raises (an order this code cannot read)."""
    with _lock:
        final = _final.get(trading)
        wanted = [i for i in dict.fromkeys(ids) if final is None or i not in final]
    if not wanted:
        return {}
    orders = trading.load_many(wanted, Order)
    done = [order_id for order_id, order in orders.items() if not order.is_open]
    if done:
        with _lock:
            final = _final.setdefault(trading, {})
            final.update(dict.fromkeys(done))
            for old in list(islice(final, max(0, len(final) - LIMIT))):
                del final[old]  # the oldest first
    return {order_id: order for order_id, order in orders.items() if order.is_open}
