"""Replaying the log: rebuild every aggregate from its events, and check that a stored
backtest, re-run from its recorded inputs, produces the very same events."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from domain.backtests import BacktestRun
from domain.recording import topic_of

PAGE = 1000


def read_log(app: Application, topics: Sequence[str] = (), *, first: int = 1,
             last: int | None = None) -> Iterator[Notification]:
    """The notifications from position ``first`` to ``last`` (default: all) in log order,
    in pages (ids may have gaps: follow id > the last one read)."""
    after = first - 1
    while page := app.recorder.select_notifications(
        start=after, limit=PAGE, stop=last, topics=topics, inclusive_of_start=False
    ):
        yield from page
        after = page[-1].id


def stored_fields(app: Application, topic: str) -> Iterator[tuple[UUID, dict]]:
    """Each stored event of ``topic`` (in log order) as its aggregate's id and its fields as
    stored (JSON, deciphered and decompressed): plain text fields are read without
    decoding every value (several times faster than mapping whole events)."""
    cipher, compressor = app.mapper.cipher, app.mapper.compressor
    for notification in read_log(app, [topic]):
        data = notification.state
        if cipher is not None:
            data = cipher.decrypt(data)
        if compressor is not None:
            data = compressor.decompress(data)
        yield notification.originator_id, json.loads(data)


@dataclass
class RebuildReport:
    events: int = 0
    aggregates: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    backtests: list[BacktestRun] = field(default_factory=list)
    # Log positions of each aggregate's first and last events: checking a stored run reads
    # the stretch of the log its aggregates span, not the whole log once per run.
    positions: dict[UUID, tuple[int, int]] = field(default_factory=dict)

    def span_of(self, aggregate_ids: Iterable[UUID]) -> tuple[int, int | None]:
        """The stretch of the log holding every event of these aggregates."""
        spans = [self.positions[oid] for oid in aggregate_ids if oid in self.positions]
        if not spans:
            return 1, 0
        return min(first for first, _ in spans), max(last for _, last in spans)


def rebuild_all(app: Application, on_progress: Callable[[int], None] | None = None
                ) -> RebuildReport:
    """Fold every event onto its aggregate, in one pass over the log."""
    report = RebuildReport()
    positions = report.positions
    aggregates: dict[UUID, Any] = {}
    broken: set[UUID] = set()
    for notification in read_log(app):
        report.events += 1
        oid = notification.originator_id
        known = positions.get(oid)
        positions[oid] = (known[0] if known else notification.id, notification.id)
        if oid in broken:
            continue
        try:
            event = app.mapper.to_domain_event(notification)
            aggregates[oid] = event.mutate(aggregates.get(oid))
        except Exception as error:  # a broken stream is reported, the rest still rebuilt
            broken.add(oid)
            report.failures.append(
                f"aggregate {oid} version {notification.originator_version}: "
                f"{type(error).__name__}: {error}"
            )
        if on_progress and report.events % 5000 == 0:
            on_progress(report.events)
    for oid, aggregate in aggregates.items():
        if oid in broken:
            continue
        report.aggregates[type(aggregate).__name__] += 1
        if isinstance(aggregate, BacktestRun):
            report.backtests.append(aggregate)
    return report


@dataclass(frozen=True)
class StreamDifference:
    position: int
    stored: str
    rerun: str

    def __str__(self) -> str:
        return (f"event #{self.position} of the run differs: stored {self.stored}; "
                f"re-run {self.rerun}")


def compare_streams(
    stored: Sequence[Notification], rerun: Sequence[Notification]
) -> StreamDifference | None:
    """The first difference of two event streams (type, aggregate, version, data, order)."""
    for position, (a, b) in enumerate(zip(stored, rerun, strict=False), start=1):
        key_a = (a.originator_id, a.originator_version, a.topic)
        key_b = (b.originator_id, b.originator_version, b.topic)
        if key_a != key_b or bytes(a.state) != bytes(b.state):
            return StreamDifference(position, _describe(a), _describe(b))
    if len(stored) != len(rerun):
        n = min(len(stored), len(rerun)) + 1
        extra = stored[n - 1] if len(stored) > len(rerun) else rerun[n - 1]
        side = "only stored" if len(stored) > len(rerun) else "only re-run"
        return StreamDifference(n, f"{len(stored)} events", f"{len(rerun)} events; "
                                f"{side} has {_describe(extra)}")
    return None


def _describe(n: Notification) -> str:
    topic = n.topic.rsplit(":", 1)[-1]
    state = bytes(n.state)
    text = state[:160].decode("utf-8", "replace") + ("…" if len(state) > 160 else "")
    return f"{topic} of {n.originator_id} v{n.originator_version} {text}"


def stored_run_events(app: Application, aggregate_ids: set[UUID], span: tuple[int, int | None]
                      = (1, None)) -> list[Notification]:
    """The events of these aggregates within ``span`` (first, last) of the log, in order."""
    first, last = span
    return [n for n in read_log(app, first=first, last=last) if n.originator_id in aggregate_ids]


def check_stored_run(app: Application, run: BacktestRun, rerun: Sequence[Notification],
                     span: tuple[int, int | None] = (1, None)) -> tuple[bool, str]:
    """Whether a stored run matches its re-run, and what was found; ``span``: the stretch
    of the log its aggregates' events lie in (:meth:`RebuildReport.span_of`). A run that did not
    complete stored a prefix of the whole run's events (whole steps, then its Interrupted
    event if it could record one): that prefix must match the re-run's. A run with no end
    recorded fails: what is missing after its last stored event cannot be checked."""
    stored = stored_run_events(app, {n.originator_id for n in rerun}, span)
    if run.status == "completed":
        difference = compare_streams(stored, rerun)
        return (True, f"identical ({len(rerun)} events)") if difference is None else (
            False, f"DIFFERS at {difference}")
    interrupted = topic_of(BacktestRun.Interrupted)
    stored = [n for n in stored if n.topic != interrupted]
    difference = compare_streams(stored, rerun[:len(stored)])
    if difference is not None:
        return False, f"DIFFERS at {difference}"
    matched = (f"its {len(stored)} stored events are identical to the first {len(stored)} "
               f"of the whole re-run's {len(rerun)}")
    if run.status == "interrupted":
        return True, f"interrupted ({run.interruption}); {matched}"
    return False, (f"INCOMPLETE: no end recorded (its process was killed, is still running, "
                   f"or its last events were removed); {matched}")
