"""Checking an audit export with nothing but the file (``tradetape audit verify-export``).

Each line carries the event's stored bytes (base64), topic, position, aggregate id and
version exactly as hashed, the previous hash and the hash. The chain must continue from the
first line's previous hash, each hash must be ``sha256(previous hash || "<position>\\n<id>\\n
<version>\\n<topic>\\n" || stored bytes)``, and each checkpoint the export covers must find
its hash at its position. The README's standalone script does the same in stdlib Python.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from projections.anchoring import Checkpoint


@dataclass
class ExportVerdict:
    lines: int = 0
    first: int | None = None
    last: int | None = None
    line: int | None = None
    position: int | None = None
    problem: str | None = None
    uncovered: list[int] = field(default_factory=list)  # checkpoints before the first line

    @property
    def intact(self) -> bool:
        return self.problem is None


def check_export(lines: Iterable[str], checkpoints: Sequence[Checkpoint] = ()
                 ) -> ExportVerdict:
    verdict = ExportVerdict()
    heads: dict[int, str] = {}
    previous: bytes | None = None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        verdict.lines = number
        try:
            row = json.loads(text)
            position = row["position"]
            digest = _link(row)
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            return _fail(verdict, number, None, f"not an export line ({error})")
        if previous is not None and bytes.fromhex(row["previous_hash"]) != previous:
            return _fail(verdict, number, position, "its previous_hash does not continue the "
                         "chain: an event before it is missing, moved or changed")
        if verdict.last is not None and position <= verdict.last:
            return _fail(verdict, number, position, "positions go backwards")
        if digest.hex() != row["hash"]:
            return _fail(verdict, number, position, "its hash is not the hash of its "
                         "previous hash and stored bytes: the line was changed")
        previous, heads[position] = digest, row["hash"]
        verdict.first = position if verdict.first is None else verdict.first
        verdict.last = position
    return _against(verdict, heads, checkpoints)


def _link(row: dict) -> bytes:
    stored = base64.b64decode(row["stored"], validate=True)
    head = f"{row['position']}\n{row['aggregate_id']}\n{row['version']}\n{row['topic']}\n"
    return hashlib.sha256(bytes.fromhex(row["previous_hash"]) + head.encode() + stored
                          ).digest()


def _against(verdict: ExportVerdict, heads: dict[int, str],
             checkpoints: Sequence[Checkpoint]) -> ExportVerdict:
    for c in checkpoints:
        if verdict.first is None or c.position < verdict.first:
            verdict.uncovered.append(c.position)
        elif verdict.last is not None and c.position > verdict.last:
            return _fail(verdict, None, c.position, (
                f"the export ends at position {verdict.last}, before the head of the "
                f"checkpoint of {c.time}: the log was cut short (or the export was limited "
                "with --to-position)"))
        elif heads.get(c.position) != c.hash:
            return _fail(verdict, None, c.position, (
                f"the chain at position {c.position} differs from the checkpoint of {c.time}"
                if c.position in heads else f"position {c.position}, the head of the "
                f"checkpoint of {c.time}, is not in the export"))
    return verdict


def _fail(verdict: ExportVerdict, line: int | None, position: int | None,
          problem: str) -> ExportVerdict:
    verdict.line, verdict.position, verdict.problem = line, position, problem
    return verdict
