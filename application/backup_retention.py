"""Which scheduled backups to keep: the newest of each of the last 7 days, 4 ISO weeks and
12 months that have one (``--keep-daily 7 --keep-weekly 4 --keep-monthly 12`` as restic
and borg mean it), told by the UTC time in each file's name. Files of other names in the
folder are never touched."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from application.backup_archive import sidecar

_NAME = re.compile(r"^tradetape-(\d{8}T\d{6}Z)\.tar\.gz$")
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Retention:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12


def backup_name(moment: datetime) -> str:
    return f"tradetape-{moment.astimezone(UTC).strftime(_STAMP)}.tar.gz"


def time_of(name: str) -> datetime | None:
    """The time in a scheduled backup's file name; None for any other name."""
    found = _NAME.match(name)
    if found is None:
        return None
    try:
        return datetime.strptime(found.group(1), _STAMP).replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13: not one of ours
        return None


def _periods(policy: Retention) -> list[tuple[int, Callable[[datetime], object]]]:
    return [(policy.daily, lambda m: m.date()),
            (policy.weekly, lambda m: m.isocalendar()[:2]),
            (policy.monthly, lambda m: (m.year, m.month))]


def to_keep(moments: Iterable[datetime], policy: Retention = Retention()) -> set[datetime]:
    """For each kind of period, the newest moment of each of its ``n`` newest periods."""
    newest_first = sorted(set(moments), reverse=True)
    keep: set[datetime] = set()
    for count, period in _periods(policy):
        seen: set[object] = set()
        for moment in newest_first:
            if len(seen) >= count:
                break
            key = period(moment)
            if key not in seen:
                seen.add(key)
                keep.add(moment)
    return keep


def prune(folder: Path, policy: Retention = Retention()) -> list[Path]:
    """Delete the scheduled backups (and their ``.sha256``) the policy does not keep;
    returns the backups deleted, oldest first."""
    found = {path: time_of(path.name) for path in folder.iterdir() if path.is_file()}
    ours = {path: moment for path, moment in found.items() if moment is not None}
    keep = to_keep(ours.values(), policy)
    gone = sorted((p for p, m in ours.items() if m not in keep), key=lambda p: ours[p])
    for path in gone:
        path.unlink(missing_ok=True)
        sidecar(path).unlink(missing_ok=True)
    return gone
