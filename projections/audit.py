"""The audit log: one row per stored event in log order, chained by hashes.

``hash = sha256(previous hash || canonical bytes)``, the first previous hash being 32 zero
bytes. The canonical bytes of an event are ``"<position>\\n<originator id>\\n<version>\\n
<topic>\\n"`` in UTF-8 (the id as canonical UUID text) followed by its state exactly as
stored. Changing, removing or inserting a stored event changes every hash from its position
on; :func:`verify` recomputes the chain from the event store and names the first position
where the audit log disagrees.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from eventsourcing.application import Application

from domain.recording import ENGINE
from projections.facts import Fact, FactDecoder
from projections.framework import Projection
from projections.reader import LogReader, LogRow, Pages
from projections.store import ViewStore
from projections.summaries import RENDER as _RENDER
from projections.summaries import plain, summarize
from projections.tables import Changes, Row, schema_hash, table

GENESIS = bytes(32)

# Indexed for what is asked of it: a page by position (the key), an aggregate's or an
# owner's events and a sealed event's row (aggregate id), an actor's events (``audit_page``)
# but the engine's. No query filters by recorded time
# or correlation id: their indexes cost 1.6 µs of PostgreSQL's processor an event to build
# in a rebuild (the largest table: 0.15 + 0.14 s for 180,057 rows) and two more index
# entries per row in a catch-up, for nothing. The actor's index leaves the engine's rows out
# (nearly all of them, so a page of the engine's is found at once going back by position):
# over every row it cost a rebuild 0.21-0.29 s of the backend's processor for 180,057 rows
# and a catch-up's COPY of them 0.6-1.0 s more; without the engine's, 0.04 s and nothing
# measurable, and a rare actor's newest page 15-22 ms -> 0.2-0.3 ms
# (``scripts/bench_pg_writes.py actor``).
PARTIAL_ACTOR = f"actor <> '{ENGINE}'"
AUDIT_LOG = table(
    "audit_log", key=("position",), indexes=(("aggregate_id", "version"),
                                              ("actor", "position")),
    partial=((("actor", "position"), PARTIAL_ACTOR),),
    position="int", recorded_at="text", aggregate_type="text", aggregate_id="text",
    version="int", event_type="text", actor="text", correlation_id="text", summary="text",
    hash="text", at="text",
)

# ``AUDIT_LOG`` as made before its actor's index (``AuditLog.upgrade``)
_BEFORE_ACTOR_INDEX = replace(AUDIT_LOG, indexes=AUDIT_LOG.indexes[:1], partial=())


def chain(previous: bytes, fact: Fact) -> bytes:
    head = f"{fact.position}\n{fact.oid}\n{fact.version}\n{fact.topic}\n"
    return _sha256(previous + head.encode() + fact.stored).digest()


_sha256 = hashlib.sha256


_TYPES: dict[str, tuple[str, str]] = {}


def _types(kind: str) -> tuple[str, str]:
    aggregate_type, _, event_type = kind.partition(".")
    types = _TYPES[kind] = (aggregate_type, event_type)
    return types


def audit_values(fact: Fact, digest: bytes) -> tuple:
    """The audit row of ``fact``, in column order. ``recorded_at``: when the store recorded
    the event (for rows older than recorded times, and the memory store, the event's own
    time: the best known); ``at``: the event's own time (market time in a backtest)."""
    state, kind = fact.state, fact.kind
    types = _TYPES.get(kind) or _types(kind)
    return (fact.position, fact.recorded or fact.iso_time, types[0], fact.oid, fact.version,
            types[1], state.get("actor"), state.get("correlation_id"), summarize(kind, state),
            digest.hex(), fact.iso_time)


def audit_row(fact: Fact, digest: bytes) -> Row:
    return dict(zip(AUDIT_LOG.column_names, audit_values(fact, digest), strict=True))


class AuditLog(Projection):
    name = "audit"
    description = "every stored event in log order, hash-chained"
    tables = (AUDIT_LOG,)
    reads_all = True

    @classmethod
    def upgrade(cls, store: ViewStore, stored_hash: str) -> bool:
        """The tables of before the actor's index (session 18) lack only that index: it is
        built on the live table in place, where a rebuild read the whole log again and
        compared the chains."""
        if stored_hash != schema_hash((_BEFORE_ACTOR_INDEX,), cls.revision):
            return False

        def make(cur: Any, generation: int) -> None:
            before = store.index_statements(_BEFORE_ACTOR_INDEX, "", generation)
            for text in store.index_statements(AUDIT_LOG, "", generation):
                if text not in before:
                    store.execute(cur, text)

        return cls.upgrade_in_place(store, stored_hash, make)

    def __init__(self) -> None:
        self.previous = GENESIS
        self._out: Changes | None = None  # the batch whose ``_ready`` rows these are
        self._ready: list[tuple] = []

    def load(self, store: ViewStore, suffix: str = "") -> None:
        rows = store.query(f"SELECT hash FROM {store.q(AUDIT_LOG.name + suffix)} "
                           "ORDER BY position DESC LIMIT 1")
        self.previous = bytes.fromhex(rows[0][0]) if rows else GENESIS

    def apply(self, fact: Fact, out: Changes) -> None:
        # ``chain`` and ``audit_values`` written out (every event of every rebuild comes
        # here; a test holds the rows equal to theirs): the bytes hashed are the same.
        topic, state, iso_time = fact.topic, fact.state, fact.iso_time
        known = _BY_TOPIC.get(topic) or _by_topic(topic)
        self.previous = digest = _sha256(
            self.previous + f"{fact.position}\n{fact.oid}\n{fact.version}{known[0]}".encode()
            + fact.stored).digest()
        render = known[3]
        try:  # subscripts: specialised opcodes, where ``get`` is a method call
            actor, correlation_id = state["actor"], state["correlation_id"]
        except KeyError:
            actor, correlation_id = state.get("actor"), state.get("correlation_id")
        values = (fact.position, fact.recorded or iso_time, known[1], fact.oid, fact.version,
                  known[2], actor, correlation_id,
                  summarize(fact.kind, state) if render is None else render(state),
                  digest.hex(), iso_time)
        if fact.ascii_text:  # the row's other texts are ids, times, names, hex: storable
            if out is not self._out:  # the batch's list of such rows, looked up once
                self._out, self._ready = out, out.tables[AUDIT_LOG.name].ready
            self._ready.append(values)
        else:
            out.append(AUDIT_LOG, values)

    def end_batch(self, out: Changes) -> None:
        self._out, self._ready = None, []  # the batch's rows are not kept past it


# By topic: what follows the version in the hashed head, the aggregate and event types, and
# the summary's compiled template (None: ``summarize`` lists the fields).
_BY_TOPIC: dict[str, tuple[str, str, str, Callable[[dict[str, Any]], str] | None]] = {}


def _by_topic(topic: str) -> tuple[str, str, str, Callable[[dict[str, Any]], str] | None]:
    kind = topic.partition(":")[2]
    aggregate_type, _, event_type = kind.partition(".")
    known = _BY_TOPIC[topic] = (f"\n{topic}\n", aggregate_type, event_type, _RENDER.get(kind))
    return known


# --- verification and export ----------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    checked: int
    unaudited: int
    position: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(app: Application, store: ViewStore, audited_to: int) -> Verdict:
    """Recompute every audit row up to ``audited_to`` from the event store and compare."""
    decode = FactDecoder(app.mapper)
    rows = _audit_rows(store)
    previous, checked, unaudited, last = GENESIS, 0, 0, 0
    expected_row = next(rows, None)
    for entry in _log(app, store):
        position = entry[0]
        if position > audited_to:
            unaudited += 1
            continue
        fact = decode(entry)
        previous = chain(previous, fact)
        if expected_row is None or expected_row["position"] > position:
            return Verdict(checked, 0, position, "the event store has an event the audit "
                                                 "log does not")
        if expected_row["position"] < position:
            return Verdict(checked, 0, expected_row["position"],
                           "the audit log has an event the event store no longer has")
        recomputed = audit_row(fact, previous)
        differing = [k for k, v in recomputed.items() if expected_row[k] != v]
        if differing == ["hash"]:  # this event is as chained: the chain broke before it
            return Verdict(checked, 0, last + 1, f"the chain breaks after position {last}: "
                           f"an event before position {position} was removed or changed")
        if differing:
            return Verdict(checked, 0, position, f"differs in {', '.join(differing)}")
        checked, last = checked + 1, position
        expected_row = next(rows, None)
    if expected_row is not None:
        return Verdict(checked, 0, expected_row["position"],
                       "the audit log has an event the event store no longer has")
    return Verdict(checked, unaudited)


def _audit_rows(store: ViewStore) -> Iterator[Row]:
    last = -1
    while page := store.select(AUDIT_LOG, "position > ?", (last,), order="position",
                               limit=5000):
        yield from page
        last = page[-1]["position"]


def _log(app: Application, store: ViewStore) -> Iterator[LogRow]:
    reader, last = LogReader(app, store), 0
    while page := reader.page(last, 5000):
        yield from page
        last = page[-1][0]


def export(app: Application, store: ViewStore, since: datetime | None, *,
           first: int | None = None, last: int | None = None,
           seals: SealPages | None = None) -> Iterator[dict[str, Any]]:
    """Every event (recorded at or after ``since``; from log position ``first`` to ``last``) as a
    JSON-ready dict: the audit row's columns, the event's data, and what lets anyone check
    the chain alone: the stored bytes (base64) and topic exactly as hashed, the previous
    hash, and the seal (``seals``: the seals of a page's positions). ``hash`` is the one the
    audit log recorded (recomputed from the store for events not audited yet), so an event
    changed in the store since it was chained fails its line of the export."""
    decode = FactDecoder(app.mapper)
    previous = GENESIS
    for page in Pages(LogReader(app, store), 0, 5000, last):
        recorded = _recorded_hashes(store, page[0][0] - 1, page[-1][0])
        sealed = seals(page[0][0] - 1, page[-1][0]) if seals is not None else None
        for entry in page:
            fact = decode(entry)
            digest = recorded.get(fact.position) or chain(previous, fact)
            if first is not None and fact.position < first:
                previous = digest
                continue
            if since is not None and recorded_before(fact, since):
                previous = digest
                continue
            row = audit_row(fact, digest)
            row["data"] = {k: plain(v, k) for k, v in fact.state.items()
                           if k not in ("timestamp", "actor", "correlation_id")}
            row.update(topic=fact.topic, stored=base64.b64encode(fact.stored).decode(),
                       previous_hash=previous.hex())
            if sealed is not None:
                row["seal"] = sealed.get(fact.position)
            previous = digest
            yield row


SealPages = Callable[[int, int], dict[int, str | None]]


def _recorded_hashes(store: ViewStore, after: int, stop: int) -> dict[int, bytes]:
    if not store.table_exists(AUDIT_LOG.name):
        return {}
    rows = store.query(f"SELECT position, hash FROM {store.q(AUDIT_LOG.name)} "
                       "WHERE position > ? AND position <= ?", (after, stop))
    return {position: bytes.fromhex(digest) for position, digest in rows}


def recorded_before(fact: Fact, moment: datetime) -> bool:
    """Whether the store recorded ``fact`` before ``moment``. An event recorded before
    recorded times were kept (or in the memory store) is judged by its own time."""
    recorded = fact.recorded_time
    return (fact.time if recorded is None else recorded) < moment


def jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":"))
