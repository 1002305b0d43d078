"""What ``backup restore`` runs on the restored store: the read models rebuilt from the
log, ``audit verify``, and the rebuilt audit chain compared with the one the source had
when the backup was taken (kept in the backup as a witness)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = 5000


@dataclass
class Checks:
    rebuilt: list[str] = field(default_factory=list)
    rebuilt_to: int = 0
    audit_intact: bool = False
    audit_events: int = 0
    audit_problem: str | None = None
    chain_compared: int = 0
    chain_problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.audit_intact and self.chain_problem is None

    def as_dict(self) -> dict[str, Any]:
        return {"rebuilt": self.rebuilt, "rebuilt_to": self.rebuilt_to,
                "audit_verify": {"intact": self.audit_intact, "events": self.audit_events,
                                 "problem": self.audit_problem},
                "source_chain": {"compared": self.chain_compared,
                                 "problem": self.chain_problem},
                "ok": self.ok}

    def lines(self) -> list[str]:
        audit = (f"audit verify: intact, {self.audit_events} events" if self.audit_intact
                 else f"audit verify: FAILED: {self.audit_problem}")
        chain = (f"audit chain: differs from the source's: {self.chain_problem}"
                 if self.chain_problem else
                 f"audit chain: the same as the source's ({self.chain_compared} hashes "
                 "compared)" if self.chain_compared else
                 "audit chain: the source had none built to compare with")
        return [f"rebuilt {', '.join(self.rebuilt)} up to position {self.rebuilt_to}",
                audit, chain]


def after_restore(backup: Path, url: str, position: int, *, progress: bool = False
                  ) -> Checks:
    """``progress``: a bar on stderr while the read models are rebuilt."""
    from api.commands.projections import rebuild_progress
    from api.commands.readmodels import open_views
    from projections.audit import verify
    from projections.rebuild import rebuild
    from projections.registry import select

    checks = Checks()
    with open_views(url) as views:
        classes = select(None)
        checks.rebuilt = [cls.name for cls in classes]
        with rebuild_progress(enabled=progress, total=position) as advance:
            checks.rebuilt_to = rebuild(views.app, views.store, classes, on_progress=advance)
        verdict = verify(views.app, views.store, views.tracking("audit").position)
        checks.audit_intact, checks.audit_events = verdict.intact, verdict.checked
        if not verdict.intact:
            checks.audit_problem = f"position {verdict.position}: {verdict.problem}"
        checks.chain_compared, checks.chain_problem = _compare_chain(backup, views, position)
    made_by, running = _versions(backup)
    if checks.chain_problem and made_by != running:
        checks.chain_problem += (f" (the backup was made by tradetape {made_by}, this is "
                                 f"{running}: did the chain's hashing change between them?)")
    return checks


def _versions(backup: Path) -> tuple[str, str]:
    from application.backup import tradetape_version
    from application.backup_archive import members, read_manifest

    manifest, _ = read_manifest(next(members(backup)), backup)
    return manifest.get("tradetape_version", "?"), tradetape_version()


def _compare_chain(backup: Path, views, position: int) -> tuple[int, str | None]:
    """How many of the source's audit hashes the rebuilt chain repeats, and the first
    position where it does not."""
    from application.backup import witness_rows

    rebuilt = _rebuilt_hashes(views)
    compared = 0
    for row in witness_rows(backup, "audit_log"):
        at, expected = row["position"], row["hash"]
        if at > position:
            break
        mine = next(rebuilt, None)
        if mine is None or mine[0] != at or mine[1] != expected:
            return compared, (f"position {at}: source {expected[:16]}…, restored "
                              f"{'none' if mine is None else mine[1][:16] + '…'}")
        compared += 1
    return compared, None


def _rebuilt_hashes(views) -> Iterator[tuple[int, str]]:
    table, last = views.store.q("audit_log"), -1
    while page := views.store.query(
            views.store.sql(f"SELECT position, hash FROM {table} WHERE position > ? "
                            f"ORDER BY position LIMIT {PAGE}"), (last,)):
        yield from ((int(p), h) for p, h in page)
        last = page[-1][0]
