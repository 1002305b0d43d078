"""Enums for what orders and deals are (side, type, status, purpose, close reason), made
from the domain's own enums so a new member is never missing here. Their GraphQL names are
the stored values (``buy``, ``take_profit``...): exactly the strings these fields answered
before they were enums, so no client sees a change (GraphQL enum names may be lower case).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from domain.deals import CloseReason as DomainCloseReason
from domain.orders import OrderPurpose as DomainPurpose
from domain.orders import OrderSide as DomainSide
from domain.orders import OrderStatus as DomainStatus
from domain.orders import OrderType as DomainType


def _mirror(name: str, domain: type[Enum], description: str) -> Any:
    return strawberry.enum(Enum(name, {m.value: m.value for m in domain}),
                           description=description)


OrderSide = _mirror("OrderSide", DomainSide, "buy or sell")
OrderType = _mirror("OrderType", DomainType, "how the order is priced")
OrderStatus = _mirror("OrderStatus", DomainStatus, "where the order stands")
OrderPurpose = _mirror("OrderPurpose", DomainPurpose, "what the order is for in its deal")
CloseReason = _mirror("CloseReason", DomainCloseReason, "why a deal was sold")


def member(enum: Any, value: str | None) -> Any:
    return None if value is None else enum(value)
