"""How the domain's own types are written to the event store (names are persisted: never
rename one)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DecimalAsStr, JSONTranscoder, Transcoding, UUIDAsHex

from application.flat_json import FlatWriter
from application.library_seam import ENCODER, fast_path
from domain.accounts import AccountKind
from domain.bots import BotMode, BotStatus, LifecycleStage
from domain.dca import DcaConfig
from domain.deals import CloseReason, DealStatus
from domain.orders import OrderPurpose, OrderSide, OrderStatus, OrderType
from domain.positions import ExitKind, ExitStatus, PositionStatus
from domain.subscriptions import SubscriptionStatus

ENUMS: tuple[type[Enum], ...] = (
    AccountKind,
    BotMode,
    BotStatus,
    LifecycleStage,
    CloseReason,
    DealStatus,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    SubscriptionStatus,
    PositionStatus,
    ExitKind,
    ExitStatus,
)


# Types whose values never change: one encoding of a value holds for good
_IMMUTABLE = frozenset({datetime, date, Decimal, UUID})


class EnumAsValue(Transcoding):
    def __init__(self, enum_type: type[Enum]):
        self.type = enum_type
        self.name = f"enum:{enum_type.__name__}"

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        return self.type(data)


class DcaConfigAsDict(Transcoding):
    type = DcaConfig
    name = "dca_config"

    def encode(self, obj: DcaConfig) -> dict[str, Any]:
        return obj.recorded()

    def decode(self, data: dict[str, Any]) -> DcaConfig:
        return DcaConfig.restore(data)


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    for enum_type in ENUMS:
        transcoder.register(EnumAsValue(enum_type))
    transcoder.register(DcaConfigAsDict())



class PrebuiltJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder, byte for byte, with its C encoder built once.

    ``json.JSONEncoder.encode`` builds a new C encoder on every call; for small event
    states that construction costs as much as the encoding itself. A state (a dict) is
    written a field at a time (``flat_json.FlatWriter``), the C encoder writing the
    fields of other types."""

    def __init__(self) -> None:
        super().__init__()
        from json.encoder import c_make_encoder, encode_basestring

        # per type: the last value encoded and what it was encoded as (_encode_again)
        self._last: dict[type, tuple[Any, Any]] = {}
        self._flat: FlatWriter | None = None  # made at the first encode (_flat_writer)
        if c_make_encoder is None or not fast_path(ENCODER):  # the library's own path
            self._encode_fast = None
            return
        e = self.encoder
        self._encode_fast = c_make_encoder(
            None, self._encode_again, encode_basestring, e.indent, e.key_separator,
            e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan,
        )

    def _encode_again(self, o: Any) -> Any:
        """The library's ``_encode_obj``, answering from the last value of the same
        immutable type when ``o`` is that very object. WHY: all the events of a candle
        carry one timestamp (the step's ``Cause.at``), and many the same price: at
        10,000 bots' first close (120,000 events) its ``isoformat`` and the transcoding
        lookup were a tenth of the append's processor time."""
        kind = type(o)
        last = self._last.get(kind)
        if last is not None and last[0] is o:
            return last[1]
        encoded = self._encode_obj(o)
        if kind in _IMMUTABLE or isinstance(o, Enum):
            self._last[kind] = (o, encoded)  # (one tuple: safe between threads)
        return encoded

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._flat = None  # (made again at the next encode: ids and amounts may differ)

    def encode(self, obj: object) -> bytes:
        if self._encode_fast is None or not isinstance(obj, dict):
            return super().encode(obj)
        flat = self._flat or self._flat_writer()
        return flat.write(obj).encode("utf8")

    def _flat_writer(self) -> FlatWriter:
        """A state written field by field (``application/flat_json.py``), the C encoder
        writing whatever the writer has no cheaper way for."""
        encode_fast = self._encode_fast

        def encode_one(value: Any) -> str:
            return "".join(encode_fast(value, 0))

        ids, amounts = self.types.get(UUID), self.types.get(Decimal)
        self._flat = FlatWriter(
            encode_one, uuid_hex=type(ids) is UUIDAsHex and ids.name == "uuid_hex",
            decimal_str=type(amounts) is DecimalAsStr and amounts.name == "decimal_str",
            ensure_ascii=self.encoder.ensure_ascii)
        return self._flat
