"""Stored events as projections read them: a :class:`Fact` per notification.

Decoding with the application's mapper builds a domain event object through a Python
``object_hook`` for every ``{"_type_", "_data_"}`` value: about 12 µs an event, more than
reading it from the store. Projections use a handful of fields, so a fact keeps the stored
JSON as parsed (about 3 µs) and converts a field only when asked (``fact.dec("price")``).
The JSON is parsed from the stored bytes with msgspec (no text decoding first; it reads every
integer exactly, as the standard library does) and with the standard library when msgspec
refuses what it holds (a lone surrogate escape, NaN, a float out of range), so every stored
state reads the same either way. Without msgspec, orjson parses (it reads an integer past 64
bits as a float: such a state goes to the standard library, found by a scan of the bytes
that cost as much as orjson's parse itself). The mapper's cipher and compressor are applied
first; an event stored under an older ``class_version`` goes through the mapper (its
upcasters) and is re-encoded with the app's transcoder, so a projection always sees the
current shape. Tests hold the accessors equal to the mapper's values, and the parsed state
equal to the standard library's, for every event type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import resolve_topic

from projections.reader import LogRow, uuid_text

# The switch: False decodes every row through the application's mapper (the library's own
# path: a domain event object, upcasters, then its fields encoded again), which a test
# holds to the same read models row for row.
FAST = True


class Fact:
    """One stored event at its log ``position``; ``kind`` is e.g. ``"Order.Filled"``."""

    __slots__ = ("ascii_text", "iso_time", "kind", "oid", "position",
                 "recorded", "state", "stored", "topic", "version")

    def __init__(self, position: int, oid: str, version: int, topic: str,
                 state: dict[str, Any], stored: bytes, kind: str | None = None,
                 recorded: str | None = None, ascii_text: bool = False):
        """``oid``: the originator (aggregate) id as canonical UUID text. ``iso_time``: the
        event's own time (when the engine decided it: market time in a backtest) as ISO
        8601 text in UTC (what the views store). ``recorded``: when the store recorded it,
        the same kind of text; None when the store did not keep it (rows older than
        that, the memory store). ``ascii_text``: True only when every text of ``state``
        is known to be ASCII without NUL (see :func:`ascii_json`); False: not known."""
        self.position, self.oid, self.version = position, oid, version
        self.topic, self.state, self.stored = topic, state, stored
        self.recorded, self.ascii_text = recorded, ascii_text
        self.kind = kind or topic.partition(":")[2]
        text = state["timestamp"]["_data_"]
        self.iso_time = text if text.endswith("+00:00") else self.time.isoformat()

    @property
    def aggregate_type(self) -> str:
        return self.kind.partition(".")[0]

    @property
    def event_type(self) -> str:
        return self.kind.rpartition(".")[2]

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.state["timestamp"]["_data_"]).astimezone(UTC)

    @property
    def recorded_time(self) -> datetime | None:
        """When the store recorded the event (None: not kept, see ``recorded``)."""
        return None if self.recorded is None else datetime.fromisoformat(self.recorded)

    @property
    def actor(self) -> str | None:
        return self.state.get("actor")

    @property
    def correlation_id(self) -> str | None:
        return self.state.get("correlation_id")

    def text(self, name: str) -> Any:
        """A plain JSON value (str, int, bool, None): stored as it is."""
        return self.state[name]

    def dec(self, name: str) -> Decimal | None:
        """A Decimal field: one Decimal per stored text while it is recent (``_RECENT``),
        however many projections and facts ask. (A cache per fact as well, a dict made at
        its first ask, cost more than it saved: 0.90 against 0.70 µs an event for the
        asks of the bench log, processor time.)"""
        value = self.state[name]
        if value is None:
            return None
        text = value["_data_"]
        try:  # a subscript, where ``get`` is a method call: most asks are of known texts
            return _RECENT[text]
        except KeyError:
            if len(_RECENT) >= _RECENT_MAX:
                _RECENT.clear()
            number = _RECENT[text] = Decimal(text)
            return number

    def uuid(self, name: str) -> UUID | None:
        value = self.state[name]
        return None if value is None else UUID(value["_data_"])

    def id_text(self, name: str) -> str | None:
        """A UUID field as canonical text (what the views store), without a UUID object."""
        value = self.state[name]
        return None if value is None else uuid_text(value["_data_"])

    def value(self, name: str) -> Any:
        """An enum's stored value (e.g. ``"buy"``), or any wrapped value's stored form."""
        value = self.state[name]
        return value["_data_"] if isinstance(value, dict) and "_type_" in value else value

    def __repr__(self) -> str:
        return f"Fact({self.position}, {self.kind}, {self.oid} v{self.version})"


# Decimals by their stored text, shared by the facts (a Decimal is immutable, and one made
# from a text is exact: the same value and exponent whoever makes it). An order's fill and
# its deal's buy or close, next to each other in the log, carry the same price, amount and
# fee texts, and one candle's fills share a price: each such text is converted once.
# Bounded: emptied when full.
_RECENT: dict[str, Decimal] = {}
_RECENT_MAX = 4096


_parse_text = json.JSONDecoder().raw_decode


def parse_state(data: bytes) -> dict[str, Any]:
    """The stored JSON object as the standard library's ``json`` reads it."""
    if EXACT_INTEGERS or data.translate(_TOKEN_TABLE).find(_BIG) < 0:  # see below
        try:
            return _fast_loads(data)
        except ValueError:  # msgspec.DecodeError and orjson.JSONDecodeError are ones
            pass
    return _parse_text(data.decode())[0]  # stored compact: no whitespace to skip


# orjson reads an integer past 64 bits as a float where ``json`` gives an int: a number of
# 19 digits or more sends the state to ``json``. A number token follows ":", ",", "[" or
# whitespace and may start with "-", which the table all makes ":" (digits "0", all else
# "x"), so one ``translate`` and one search find one (never a long Decimal, which is a
# string). A "-" inside a string followed by 19 digits is found too: read by ``json``, the
# same. One search, not one per sign: each costs as much as the ``translate`` (the pattern
# ends in "0", which the translated text is full of). Searched with ``find``, never ``in``:
# ``bytes.__contains__`` first tries its argument as an integer, raising and formatting a
# TypeError it then drops (callgrind: ~1,800 instructions a test, two tests a row).
_TOKENS = bytearray(b"x" * 256)
_TOKENS[ord("0"):ord("9") + 1] = b"0" * 10
for _c in b":,[ \t\n\r-":
    _TOKENS[_c] = ord(":")
_TOKEN_TABLE = bytes(_TOKENS)
_BIG = b":" + b"0" * 19


# msgspec reads an integer of any size exactly and refuses (raises a ValueError) whatever it
# would read otherwise than ``json``: NaN and infinities, lone surrogate escapes, a float
# out of range. Its parse of the bench log's states: 0.62 µs a row against orjson's 0.70
# plus 0.45 for the scan above (processor time, first 60,000 events), which it needs none of.
try:
    from msgspec import Struct as _Struct
    from msgspec.json import Decoder as _Decoder

    _fast_loads: Callable[[bytes], Any] = _Decoder().decode

    class _Named(_Struct):
        """What ``FactDecoder.owner_of`` reads of a state: every other field is skipped
        as it is parsed, nothing built of it."""

        owner_id: Any = None
        class_version: int = 1

    _named_loads: Callable[[bytes], _Named] | None = _Decoder(_Named).decode
    EXACT_INTEGERS = True
except ImportError:  # pragma: no cover - a dependency; orjson comes with ccxt
    EXACT_INTEGERS = False
    _named_loads = None
    try:
        from orjson import loads as _fast_loads
    except ImportError:
        def _fast_loads(data: bytes) -> Any:
            return _parse_text(data.decode())[0]


def ascii_json(data: bytes) -> bool:
    """Whether every text the JSON ``data`` holds is plain ASCII without NUL: the bytes are
    ASCII and hold no ``\\u`` escape (the transcoder writes other characters as UTF-8 and
    only control characters, NUL among them, and lone surrogates as escapes). Such text
    needs no escaping to be stored in a view (``tables.storable``); the audit log skips
    the check for it. A text holding a backslash and a ``u`` is escaped ``\\\\u``:
    refused here too, which only costs the check."""
    # A backslash is found by memchr; the two-byte search costs as much as parsing a tenth
    # of the state, and most states hold no backslash at all.
    return data.isascii() and (data.find(b"\\") < 0 or data.find(b"\\u") < 0)


_new_fact = object.__new__
# What a fact of a topic goes to: ``function(fact, argument)`` for each (``dispatch``).
Route = list[tuple[Callable[[Any, Any], Any], Any]]


def class_version(topic: str) -> int:
    return getattr(resolve_topic(topic), "class_version", 1)


class FactDecoder:
    """Turns notifications into facts with the application's mapper's settings."""

    def __init__(self, mapper: Mapper):
        self.mapper = mapper
        self._cipher, self._compressor = mapper.cipher, mapper.compressor
        self._plain = self._cipher is None and self._compressor is None
        self._topics: dict[str, tuple[int, str]] = {}  # class_version and kind by topic
        self.fast = FAST

    def __call__(self, row: LogRow) -> Fact:
        try:  # what every reader gives: six fields (a tuple's slice is a new tuple)
            position, oid, version, topic, stored, recorded = row
        except ValueError:
            (position, oid, version, topic, stored), recorded = row, None
        if not self.fast:
            return Fact(position, oid, version, topic, self._upcast(row), stored,
                        topic.partition(":")[2], recorded)
        data = stored
        if not self._plain:
            if self._cipher is not None:
                data = self._cipher.decrypt(data)
            if self._compressor is not None:
                data = self._compressor.decompress(data)
        # ``parse_state`` and ``ascii_json`` written out: this runs for every stored row.
        try:
            state = (_fast_loads(data) if EXACT_INTEGERS
                     or data.translate(_TOKEN_TABLE).find(_BIG) < 0 else None)
        except ValueError:  # msgspec.DecodeError and orjson.JSONDecodeError are ones
            state = None
        if state is None:
            state = _parse_text(data.decode())[0]
        # Subscripts and ``in`` where ``get`` would be a method call, for every row.
        try:
            known = self._topics[topic]
        except KeyError:
            known = self._topic(topic)
        ascii_text = data.isascii() and (data.find(b"\\") < 0 or data.find(b"\\u") < 0)
        if known[0] > (state["class_version"] if "class_version" in state else 1):  # noqa: SIM401
            state, ascii_text = self._upcast(row), False  # an upcaster may add any text
        # ``Fact.__init__`` written out (no call of it: every row), for a state whose time
        # is stored in UTC, as the engine stores every time.
        text = state["timestamp"]["_data_"]
        if not text.endswith("+00:00"):
            return Fact(position, oid, version, topic, state, stored, known[1], recorded,
                        ascii_text)
        fact = _new_fact(Fact)
        fact.position, fact.oid, fact.version, fact.topic = position, oid, version, topic
        fact.state, fact.stored, fact.kind, fact.recorded = state, stored, known[1], recorded
        fact.ascii_text, fact.iso_time = ascii_text, text
        return fact

    def owner_of(self, row: LogRow) -> str | None:
        """The ``owner_id`` text ``row``'s state names, else None: ``self(row).state.
        get("owner_id")`` (a text only), without building the rest of the state. WHY:
        after a heavy candle every api request waits while the owners of thousands of new
        orders and deals are read (0.48 µs a state against 2.4 µs for the whole fact: the
        bench log's last 30,000 states naming an owner, processor time). A state under an
        older class version (its upcasters), a ciphered or compressed one, or one msgspec
        refuses, is decoded whole."""
        if _named_loads is not None and self.fast and self._plain:
            try:
                named = _named_loads(row[4])
                try:
                    current = self._topics[row[3]][0]
                except KeyError:
                    current = self._topic(row[3])[0]
                if current <= named.class_version:
                    owner = named.owner_id
                    return owner if isinstance(owner, str) else None
            except ValueError:  # as ``__call__``: ``json`` reads it
                pass
        owner = self(row).state.get("owner_id")
        return owner if isinstance(owner, str) else None

    def dispatch(self, rows: Iterable[LogRow], route_of: Callable[[str], Route | None],
                 known: dict[str, tuple[Route | None, int, str]]) -> None:
        """Decode each of ``rows`` whose topic has a route (``route_of(topic)``, not None: a
        row without one is never parsed) and call ``function(fact, argument)`` for each
        ``(function, argument)`` of that route, in order (a runner's handler and the
        batch's changes of its projection). ``known``: the caller's cache by topic of the
        route, class version and kind (one look-up a row for all three).

        The common row (no cipher nor compressor, the current class version, a time in
        UTC) is decoded here as ``__call__`` decodes it, without a call per row: with the
        loop handing facts to handlers, a third less than a call per row and a generator
        (1.76 against 1.89 and 2.12 µs an event with handlers that do nothing); every
        other row is decoded by ``__call__``."""
        if not (self.fast and self._plain and EXACT_INTEGERS):
            for row in rows:
                self._dispatch_one(row, route_of, known)
            return
        loads, new = _fast_loads, _new_fact
        for row in rows:
            try:
                position, oid, version, topic, stored, recorded = row
                found = known[topic]
            except KeyError:
                found = self._known(topic, route_of, known)
            except ValueError:  # a row without its recorded time: ``__call__`` reads it
                self._dispatch_one(row, route_of, known)
                continue
            route = found[0]
            if route is None:
                continue
            try:
                state = loads(stored)
                text = state["timestamp"]["_data_"]
                # (A class at its first version has no older events to upcast.)
                common = ((found[1] == 1 or found[1] <= state.get("class_version", 1))
                          and text.endswith("+00:00"))
            except ValueError:  # see ``__call__``: ``json`` reads it
                common = False
            if common:
                fact = new(Fact)
                fact.position, fact.oid, fact.version, fact.topic = (position, oid, version,
                                                                     topic)
                fact.state, fact.stored, fact.kind = state, stored, found[2]
                fact.recorded, fact.iso_time = recorded, text
                fact.ascii_text = stored.isascii() and (stored.find(b"\\") < 0
                                                        or stored.find(b"\\u") < 0)
            else:
                fact = self(row)  # upcast, or its time made UTC, or read by ``json``
            for function, argument in route:
                function(fact, argument)

    def _dispatch_one(self, row: LogRow, route_of: Callable[[str], Route | None],
                      known: dict[str, tuple[Route | None, int, str]]) -> None:
        """``dispatch`` of one row, decoded by ``__call__``."""
        route = (known.get(row[3]) or self._known(row[3], route_of, known))[0]
        if route is not None:
            fact = self(row)
            for function, argument in route:
                function(fact, argument)

    def _known(self, topic: str, route_of: Callable[[str], Route | None],
               known: dict[str, tuple[Route | None, int, str]]) -> tuple[Route | None, int, str]:
        route = route_of(topic)  # a topic no one reads is not even resolved
        found = known[topic] = (None, 1, "") if route is None else (route, *self._topic(topic))
        return found

    def _topic(self, topic: str) -> tuple[int, str]:
        """The class version and kind of ``topic``'s events."""
        try:
            return self._topics[topic]
        except KeyError:
            found = self._topics[topic] = (class_version(topic), topic.partition(":")[2])
            return found

    def _upcast(self, row: LogRow) -> dict[str, Any]:
        """The state as the library decodes it (and upcasts), encoded again."""
        position, oid, version, topic, stored = row[:5]
        n = Notification(id=position, originator_id=UUID(oid), originator_version=version,
                         topic=topic, state=stored)
        event = self.mapper.to_domain_event(n)
        current = {k: v for k, v in vars(event).items()
                   if k not in ("originator_id", "originator_version")}
        return json.loads(self.mapper.transcoder.encode(current))
