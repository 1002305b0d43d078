"""Anchoring the audit chain outside the database: checkpoints, and checking the log against
them.

A checkpoint is the chain's head (position, hash, number of events up to it) at a time,
with the audit key's fingerprint, the first sealed position and, when the operator signs
it, an Ed25519 signature over :meth:`Checkpoint.message`. Written to a file (one JSON line
each) that the database's writers cannot reach, it catches what the chain alone cannot: a
log cut short (with its audit rows), and events removed or slipped in below it.

:func:`walk_log` recomputes the chain from the stored events once, noting its hash and
count at each checkpoint's position, and whether every aggregate's versions follow one
another (a removed or reordered event shows there, at its position).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eventsourcing.application import Application

from projections.audit import AUDIT_LOG, GENESIS
from projections.reader import LogReader, LogRow
from projections.store import ViewStore

FORMAT = "tradetape-audit-checkpoint"


class CheckpointFileError(Exception):
    code = "CHECKPOINT_UNREADABLE"


@dataclass(frozen=True)
class Checkpoint:
    position: int
    hash: str
    events: int
    time: str
    key_fingerprint: str | None = None
    sealed_from: int | None = None
    signature: str | None = None
    public_key: str | None = None
    event_id: str | None = None

    def message(self) -> bytes:
        """The bytes an operator's key signs (everything but the signature itself)."""
        parts = ("tradetape-audit-checkpoint-v1", self.position, self.hash, self.events,
                 self.time, self.key_fingerprint or "", self.sealed_from or "",
                 self.public_key or "")
        return "\n".join(str(p) for p in parts).encode()

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": 1, **asdict(self)},
                          separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        if data.get("format") != FORMAT:
            raise CheckpointFileError(f"not a {FORMAT}: {str(data)[:80]}")
        try:
            checkpoint = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as error:
            raise CheckpointFileError(f"a checkpoint lacks a field: {error}") from None
        if type(checkpoint.position) is not int or type(checkpoint.events) is not int or \
                not isinstance(checkpoint.hash, str):
            raise CheckpointFileError(f"a checkpoint with a malformed field: {str(data)[:80]}")
        return checkpoint


def read_checkpoints(path: str | Path) -> list[Checkpoint]:
    """Every checkpoint in a file: one JSON object a line (as ``--out`` appends them), or
    one JSON object or list (as printed)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointFileError(f"cannot read {path}: {error}") from None
    try:
        whole = json.loads(text)
        items = whole if isinstance(whole, list) else [whole]
    except json.JSONDecodeError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise CheckpointFileError(f"{path} is not JSON lines: {error}") from None
    if not items or not all(isinstance(i, dict) for i in items):
        raise CheckpointFileError(f"{path} holds no checkpoint")
    return sorted((Checkpoint.from_dict(i) for i in items), key=lambda c: c.position)


def audit_head(store: ViewStore) -> tuple[int, str, int] | None:
    """The audit log's last row: (position, hash, rows up to it); None when empty."""
    table = store.q(AUDIT_LOG.name)
    rows = store.query(f"SELECT position, hash FROM {table} ORDER BY position DESC LIMIT 1")
    if not rows:
        return None
    (count,) = store.query(f"SELECT COUNT(*) FROM {table}")[0]
    return rows[0][0], rows[0][1], count


# --- walking the log ------------------------------------------------------------------------


def link(previous: bytes, row: LogRow) -> bytes:
    """One step of the audit chain (``projections.audit.chain``) from a raw log row."""
    position, oid, version, topic, stored = row[:5]  # (recorded time: not hashed)
    head = f"{position}\n{oid}\n{version}\n{topic}\n"
    return hashlib.sha256(previous + head.encode() + bytes(stored)).digest()


@dataclass
class LogWalk:
    """The chain recomputed from the store up to ``stop``."""

    at: dict[int, tuple[str, int, bool]] = field(default_factory=dict)  # hash, count, exact
    last: int = 0
    events: int = 0
    order_problem: tuple[int, str] | None = None


def walk_log(app: Application, store: ViewStore, positions: Iterable[int],
             stop: int | None = None) -> LogWalk:
    wanted = sorted(set(positions))
    walk, previous, versions = LogWalk(), GENESIS, {}
    i = 0
    for row in _rows(app, store, stop):
        position, oid, version = row[0], row[1], row[2]
        while i < len(wanted) and wanted[i] < position:  # no event at that position
            walk.at[wanted[i]] = (previous.hex(), walk.events, False)
            i += 1
        previous = link(previous, row)
        walk.events += 1
        walk.last = position
        if i < len(wanted) and wanted[i] == position:
            walk.at[position] = (previous.hex(), walk.events, True)
            i += 1
        expected = versions.get(oid, 0) + 1
        if version != expected and walk.order_problem is None:
            walk.order_problem = (position, _order_problem(oid, expected - 1, version))
        versions[oid] = max(version, versions.get(oid, 0))
    return walk


def _order_problem(oid: str, last: int, version: int) -> str:
    if version > last + 1:
        return (f"aggregate {oid} jumps from version {last} to {version}: an event was "
                "removed before this position")
    return f"aggregate {oid} version {version} comes after version {last}: events reordered"


def _rows(app: Application, store: ViewStore, stop: int | None) -> Iterator[LogRow]:
    reader, last = LogReader(app, store), 0
    while page := reader.page(last, 5000, stop):
        yield from page
        last = page[-1][0]


# --- comparing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """``exact``: the problem is at ``position``; else somewhere from it to a checkpoint."""

    position: int
    problem: str
    exact: bool = True


def against_checkpoints(walk: LogWalk, checkpoints: Sequence[Checkpoint]) -> list[Finding]:
    """What the log, as walked, contradicts in each checkpoint (oldest first)."""
    found: list[Finding] = []
    holds_to = 0
    for c in checkpoints:
        if walk.last < c.position:
            found.append(Finding(walk.last + 1, (
                f"the log ends at position {walk.last}, before the head of the checkpoint of "
                f"{c.time} (position {c.position}): events {walk.last + 1}..{c.position} "
                "were removed (truncation)")))
            continue
        digest, count, exact = walk.at[c.position]
        if not exact:
            found.append(Finding(c.position, f"the event at position {c.position}, the "
                                             f"head of the checkpoint of {c.time}, is gone"))
        elif count != c.events:
            more = "more" if count > c.events else "fewer"
            found.append(Finding(holds_to + 1, (
                f"{abs(count - c.events)} {more} events up to position {c.position} than the "
                f"checkpoint of {c.time} counted ({count} vs {c.events}): events were "
                f"{'inserted' if more == 'more' else 'removed'} between positions "
                f"{holds_to + 1} and {c.position}"), exact=False))
        elif digest != c.hash:
            found.append(Finding(holds_to + 1, (
                f"the chain at position {c.position} differs from the checkpoint of {c.time}: "
                f"an event between positions {holds_to + 1} and {c.position} was changed, "
                "replaced or moved"), exact=False))
        else:
            holds_to = c.position
    return found
