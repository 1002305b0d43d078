"""Finding an order by its client order id, the way each exchange allows it.

Exchange quirks as data (freqtrade's ``_ft_has`` idea): Binance answers a query by
``origClientOrderId`` directly; Bybit filters its open and closed order lists by
``orderLinkId``; any other exchange is asked for its open, then its closed orders, which
are searched for the id. "Not found" is None: the exchange does not know the order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from domain.errors import DomainError


class LookupRule(NamedTuple):
    by_query: str | None = None  # fetch_order(None, pair, {by_query: id}) answers directly
    list_filter: str | None = None  # a param that filters open/closed order lists by the id
    fetch_order_params: tuple[tuple[str, Any], ...] = ()


RULES: dict[str, LookupRule] = {
    "binance": LookupRule(by_query="origClientOrderId"),
    # Bybit's fetchOrder reaches only the last 500 orders and insists on being told so.
    "bybit": LookupRule(list_filter="orderLinkId", fetch_order_params=(("acknowledged", True),)),
}


class ClientIdLookup:
    def __init__(self, client: Any, call: Callable[[str, Callable[[], Any]], Any]):
        self.client = client
        self._call = call
        self.rule = RULES.get(client.id, LookupRule())

    def fetch_order_params(self) -> dict[str, Any]:
        return dict(self.rule.fetch_order_params)

    def find(self, exchange_cid: str, pair: str) -> dict[str, Any] | None:
        """The exchange's unified order placed with ``exchange_cid``, or None."""
        if self.rule.by_query:
            try:
                return self._call("looking an order up", lambda: self.client.fetch_order(
                    None, pair, {self.rule.by_query: exchange_cid}))
            except DomainError as error:
                if error.code == "ORDER_NOT_FOUND":
                    return None
                raise
        params = {self.rule.list_filter: exchange_cid} if self.rule.list_filter else {}
        for method in ("fetch_open_orders", "fetch_closed_orders"):
            if not self.client.has.get(_camel(method)):
                continue
            orders = self._call("looking an order up", lambda m=method: getattr(
                self.client, m)(pair, None, None, dict(params)))
            for order in orders:
                if order.get("clientOrderId") == exchange_cid:
                    return order
        return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)
