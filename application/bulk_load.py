"""Many aggregates loaded at once: a restart brings back every running bot, its open deal
and that deal's open orders, tens of thousands of aggregates, in a few queries instead of
one or two each (about 3 ms a round trip on a busy PostgreSQL).

The same events, mapped and applied the same way as the library's repository does, from
the newest usable snapshot (``application.snapshots``) on. An aggregate whose load replayed
at least ``SNAPSHOT_AFTER`` (3) events gets a new snapshot, so the next start reads less.

``TRADETAPE_BULK_LOAD=0`` (or a store without the many-ids reads: the memory store, SQLite)
loads one aggregate at a time through the library's repository instead; a test holds both
ways equal. The many-ids reads are ``select_events_of``/``select_last_of`` of
adapters/event_store/postgres.py, pinned to eventsourcing 9.5.6's table layout: a fast path
of ``application.library_seam`` (``TRADETAPE_LIBRARY_PATHS=1`` or another version: off).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from application.library_seam import BULK_LOAD, BULK_LOAD_ENV, fast_path
from application.snapshots import (
    PackedSnapshot,
    decoded,
    member_of,
    round_trips,
    usable,
    uuid_of_hex,
)
from domain.errors import NotFoundError

if TYPE_CHECKING:
    from application.trading import Trading

log = logging.getLogger("tradetape.load")
A = TypeVar("A")
SWITCH = BULK_LOAD_ENV  # "0": one at a time (read by application.library_seam)
CHUNK = 5000  # ids per query (a round trip each: fewer, longer ones on a busy server)
# Events a load replays before its aggregate earns a snapshot. Every load here is a start's
# (bots, their open deals and orders, accounts): a bot or deal of 9-11 events replays in
# ~150 us, from a snapshot in ~50 us (processor time). The event at a snapshot's version is
# read but not decoded (``_still_at``): a snapshot is one decoding, so an open order of 2
# events earns one too (every aggregate a start loads then costs one decoding).
SNAPSHOT_AFTER = 2


def enabled(trading: Trading) -> bool:
    return fast_path(BULK_LOAD) and hasattr(trading.recorder, "select_events_of")


def load_many(trading: Trading, ids: Iterable[UUID], kind: type[A]) -> dict[UUID, A]:
    """Each aggregate of ``ids`` that exists and is a ``kind``, by id (the others left out)."""
    wanted = list(dict.fromkeys(ids))
    if not enabled(trading):
        return _one_by_one(trading, wanted, kind)
    found: dict[UUID, A] = {}
    due: list[Any] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        for aggregate, replayed in _chunk(trading, chunk):
            if isinstance(aggregate, kind):
                found[aggregate.id] = aggregate
                if replayed >= SNAPSHOT_AFTER and trading.snapshots is not None:
                    due.append(aggregate)
    if due:
        keep_snapshots(trading, due)
    return found


def _one_by_one(trading: Trading, ids: list[UUID], kind: type[A]) -> dict[UUID, A]:
    found = {}
    for aggregate_id in ids:
        try:
            found[aggregate_id] = trading.load(aggregate_id, kind)
        except NotFoundError:
            continue
    return found


class _FastDecoding:
    """The library's JSON transcoder as the bulk reads decode with it: the same objects from
    the same bytes, through a tighter object hook. WHY: a start decodes some 50,000
    snapshots and events of ~16 encoded values each; the library's hook (``_decode_obj``:
    lengths, three lookups guarded by ``try``, a ``cast``) was the largest single cost of
    loading them (pinned, like the reads: eventsourcing 9.5.6's ``_type_``/``_data_``)."""

    def __init__(self, transcoder: Any):
        import json

        from eventsourcing.persistence import UUIDAsHex

        decoders = {name: _direct_decoder(t) for name, t in transcoder.names.items()}
        if isinstance(transcoder.names.get("uuid_hex"), UUIDAsHex):
            decoders["uuid_hex"] = uuid_of_hex

        def hook(d: dict[str, Any]) -> Any:
            if len(d) == 2 and "_type_" in d and "_data_" in d:
                return decoders[d["_type_"]](d["_data_"])
            return d

        self.transcoder = transcoder
        self._decode = json.JSONDecoder(object_hook=hook).decode

    def encode(self, obj: Any) -> bytes:
        return self.transcoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        try:
            return self._decode(data.decode("utf8"))
        except Exception:  # an unknown name, bad bytes: as the library says it
            return self.transcoder.decode(data)


def _direct_decoder(transcoding: Any) -> Callable[[Any], Any]:
    """What ``transcoding.decode`` does, called without its Python frame where it is one of
    the library's (9.5.6) or our enums': ``Decimal(data)``, ``datetime.fromisoformat(data)``,
    an enum member looked up by value. WHY: a start decodes some 200,000 decimals,
    100,000 times and 100,000 enums; the frame of each (and ``EnumType.__call__``) cost
    about as much as making the value. A value they refuse raises, as the library's does:
    the decoding then falls back to the library's transcoder, which says why."""
    from datetime import datetime
    from decimal import Decimal

    from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr

    from application.transcodings import EnumAsValue

    kind = type(transcoding)
    if kind is DecimalAsStr:
        return Decimal
    if kind is DatetimeAsISO:
        return datetime.fromisoformat
    if kind is EnumAsValue:
        return partial(member_of, transcoding.type._value2member_map_, transcoding.type)
    return transcoding.decode


def _fast_mapper(trading: Trading) -> Any:
    """``trading``'s mapper, decoding through ``_FastDecoding`` (built once per store)."""
    import copy

    mapper = trading.mapper
    fast = getattr(trading, "_bulk_mapper", None)
    if fast is None or fast.transcoder.transcoder is not mapper.transcoder:
        fast = copy.copy(mapper)
        fast.transcoder = _FastDecoding(mapper.transcoder)
        trading._bulk_mapper = fast
    return fast


def _chunk(trading: Trading, ids: list[UUID]):
    """(aggregate, events replayed) for each id found, from its usable snapshot if any."""
    from application.trading import _project

    mapper = _fast_mapper(trading)
    snaps = {}
    snapshot_recorder = getattr(trading.snapshots, "recorder", None)
    if snapshot_recorder is not None and hasattr(snapshot_recorder, "select_last_of"):
        stored = snapshot_recorder.select_last_of(ids)
        snaps = {s.originator_id: s for s in decoded(mapper, stored) if usable(s)}
    after = [snaps[i].originator_version - 1 if i in snaps else 0 for i in ids]
    by_id: dict[UUID, list[Any]] = {}
    for stored in trading.recorder.select_events_of(ids, after):
        by_id.setdefault(stored.originator_id, []).append(stored)
    again = []
    decode = mapper.to_domain_event
    for aggregate_id in ids:
        stored = by_id.get(aggregate_id, [])
        snap = snaps.get(aggregate_id)
        if snap is not None:
            if not stored or not _still_at(snap, stored[0], decode):
                again.append(aggregate_id)  # the log changed under it: replay all
                continue
            # One in the older format earns a packed one (the next start decodes less)
            replayed = len(stored) - 1 if type(snap) is PackedSnapshot else SNAPSHOT_AFTER
            yield _project(snap.mutate(None), [decode(s) for s in stored[1:]]), replayed
        elif stored:
            yield _project(None, [decode(s) for s in stored]), len(stored)
    if again:
        log.info("%d snapshots no longer match their events: ignored", len(again))
        by_id = {}
        for stored in trading.recorder.select_events_of(again, [0] * len(again)):
            by_id.setdefault(stored.originator_id, []).append(stored)
        for aggregate_id in again:
            events = [decode(s) for s in by_id.get(aggregate_id, [])]
            if events:
                yield _project(None, events), len(events)


def _still_at(snapshot: Any, stored: Any, decode: Any) -> bool:
    """Whether ``stored``, the event at the snapshot's version, still carries its time.
    Told from the stored bytes when they start as the library's JSON of that time does
    (the time is the first field of every event it writes: no decoding, which costs as
    much as the rest of a snapshotted aggregate's load); else decoded and compared."""
    if stored.originator_version != snapshot.originator_version:
        return False
    time = snapshot.timestamp.isoformat()
    if stored.state.startswith(b'{"timestamp":{"_type_":"datetime_iso","_data_":"%s"}'
                               % time.encode()):
        return True
    return decode(stored).timestamp == snapshot.timestamp


def keep_snapshots(trading: Trading, aggregates: list[Any]) -> int:
    """Store a snapshot of each aggregate (the ones that read back equal), in one
    transaction, in place of one already there at its version (taken by other code, or
    in the older format: unusable, or it would not have been replayed). The in-place write
    is hand-written SQL on the library's snapshots table (``replace_events``): called only
    on the bulk path, which the seam turns off with the library's own paths."""
    from eventsourcing.persistence import IntegrityError

    snapshots = [s for a in aggregates
                 if round_trips(trading.mapper, s := PackedSnapshot.take(a), a)]
    if not snapshots or trading.snapshots is None:
        return 0
    recorder = trading.snapshots.recorder
    if hasattr(recorder, "replace_events"):
        recorder.replace_events([trading.mapper.to_stored_event(s) for s in snapshots])
        return len(snapshots)
    try:
        trading.snapshots.put(snapshots)
    except IntegrityError:  # one of them exists (taken by other code): one at a time
        kept = 0
        for snapshot in snapshots:
            try:
                trading.snapshots.put([snapshot])
                kept += 1
            except IntegrityError:
                continue
        return kept
    return len(snapshots)
