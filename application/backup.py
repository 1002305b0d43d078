"""Backups: ``create`` (every kept table at one position, into one file), ``verify`` (the
file is what its manifest says) and ``restore`` (into an empty store, all or nothing).

What a backup keeps is listed in ``adapters/backup/catalog.py``; the stores read and write
through the ports of ``domain/backup.py``; the file format is ``application/backup_archive``.
The read models are not kept: after a restore they are rebuilt from the log, and the audit
chain the source had (kept as a witness) must come out of the rebuild the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from application.backup_archive import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MANIFEST_HASH,
    ArchiveWriter,
    Member,
    columns_of,
    decode_row,
    gaps,
    members,
    read_manifest,
    recorded_hashes,
    shape_of,
)
from domain.backup import BackupError, BackupStore, TableShape
from domain.ports import Clock

BATCH = 5000
LOG, WITNESS = "log", "witness"
Progress = Callable[[str, int], None]  # (table, rows so far)


@dataclass(frozen=True)
class Created:
    path: Path
    manifest_sha256: str
    manifest: dict[str, Any]


def create(source: BackupStore, out: Path, *, clock: Clock, version: str,
           on_progress: Progress | None = None) -> Created:
    """Every kept table of ``source`` read in one transaction, written to ``out``."""
    if out.exists():
        raise BackupError(f"{out} already exists; a backup never overwrites one",
                          code="BACKUP_EXISTS")
    out.parent.mkdir(parents=True, exist_ok=True)
    archive = ArchiveWriter(out)
    try:
        with source.read() as reader:
            tables = reader.tables()
            if not any(shape.role == LOG for shape in tables):
                raise BackupError(f"{source.display} holds no event log: nothing to back up",
                                  code="NOTHING_TO_BACK_UP")
            for shape in tables:
                table = archive.table(shape)
                for batch in reader.rows(shape, BATCH):
                    table.write(batch)
                    if on_progress is not None:
                        on_progress(shape.name, table.rows)
        logs = {t.shape.application: t for t, _ in archive.files if t.shape.role == LOG}
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "tradetape_version": version,
            "created_at": clock.now().isoformat(),
            "source": {"kind": source.kind, "database": source.display},
            "applications": {app: {"table": t.shape.name, "last_notification_id": t.last or 0}
                             for app, t in logs.items()},
            "position": max((t.last or 0 for t in logs.values()), default=0),
        }
        digest = archive.finish(manifest)
    finally:
        archive.close()
    return Created(out, digest, {**manifest, "tables": [t.entry() for t, _ in archive.files]})


# --- verify ---------------------------------------------------------------------------------


@dataclass
class Verified:
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    expected_sha256: str | None  # from FILE.sha256 or the caller; None: nothing to compare
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: Path, expected_sha256: str | None = None,
           on_progress: Progress | None = None) -> Verified:
    """Read the whole file: the manifest's hash (against ``expected_sha256``, else the
    ``FILE.sha256`` beside it), each table file's hash, rows and positions, and the whole
    file's hash when ``FILE.sha256`` records it (so no byte can change unnoticed)."""
    whole, recorded = hashlib.sha256(), recorded_hashes(path)
    stream = members(path, whole)
    first = next(stream, None)
    if first is None:
        raise BackupError(f"{path} is empty", code="BACKUP_CORRUPT")
    manifest, digest = read_manifest(first, path)
    expected = expected_sha256 or recorded.get(MANIFEST)
    result = Verified(path, manifest, digest, expected)
    if expected is not None and expected.lower() != digest:
        result.problems.append(f"manifest: sha256 {digest} is not the expected {expected}")
    entries = {e["file"]: e for e in manifest.get("tables", [])}
    seen: set[str] = set()
    for member in stream:
        if member.name == MANIFEST_HASH:
            _check_embedded(member, digest, result)
        elif member.name in entries:
            seen.add(member.name)
            result.problems.extend(check_table(entries[member.name], member, on_progress))
        else:
            result.problems.append(f"{member.name}: not in the manifest")
    result.problems.extend(f"{name}: missing from the file" for name in entries
                           if name not in seen)
    file_hash = recorded.get(path.name)
    if file_hash is not None and file_hash != whole.hexdigest():
        result.problems.append(f"{path.name}: sha256 {whole.hexdigest()} is not the "
                               f"{file_hash} recorded beside it")
    return result


def _check_embedded(member: Member, digest: str, result: Verified) -> None:
    recorded = b"".join(member.lines).decode(errors="replace").split()
    if not recorded or recorded[0] != digest:
        result.problems.append(f"{MANIFEST_HASH}: does not match the manifest")


def check_table(entry: dict[str, Any], member: Member,
                on_progress: Progress | None = None) -> list[str]:
    """What is wrong with one table file, compared with its manifest entry."""
    name, columns = entry["file"], columns_of(entry)
    binary = [c.kind == "bytes" for c in columns]
    at = [c.name for c in columns].index(entry["position"]) if entry.get("position") else None
    digest, rows, last, problems = hashlib.sha256(), 0, None, []
    for line in member.lines:
        digest.update(line)
        rows += 1
        if on_progress is not None and not rows % BATCH:
            on_progress(entry["name"], rows)
        try:
            row = decode_row(line, binary)
        except ValueError as error:
            problems.append(f"{name}: row {rows} unreadable ({error})")
            continue
        if at is not None:
            if not isinstance(row[at], int) or isinstance(row[at], bool):
                problems.append(f"{name}: row {rows} has position {row[at]!r}, not a number")
                continue
            if last is not None and not row[at] > last:
                problems.append(f"{name}: position {row[at]} after {last} (not increasing)")
            last = row[at]
    if digest.hexdigest() != entry["sha256"]:
        problems.append(f"{name}: sha256 {digest.hexdigest()} is not the manifest's "
                        f"{entry['sha256']}")
    if rows != entry["rows"]:
        problems.append(f"{name}: {rows} rows, the manifest says {entry['rows']}")
    if at is not None and (last != entry["last_position"] or
                           gaps(rows, last) != entry["gaps"]):
        problems.append(f"{name}: positions end at {last} with {gaps(rows, last)} holes, the "
                        f"manifest says {entry['last_position']} with {entry['gaps']}")
    return problems


# --- restore --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    position: int
    rows: dict[str, int]
    manifest: dict[str, Any]
    manifest_sha256: str


def restore(path: Path, target: BackupStore, *, expected_sha256: str | None = None,
            on_progress: Progress | None = None) -> Restored:
    """The backup into ``target``, which must be empty: verified first, then written in one
    transaction (positions and bytes exactly as backed up)."""
    checked = verify(path, expected_sha256, on_progress)
    if not checked.ok:
        raise BackupError(f"{path} failed verification: {'; '.join(checked.problems)}",
                          code="BACKUP_CORRUPT")
    entries = {e["file"]: e for e in checked.manifest["tables"] if e["role"] != WITNESS}
    rows: dict[str, int] = {}
    with target.write() as writer:
        have = writer.tables()
        _check_target(entries.values(), have, writer, target.display)
        for member in members(path):
            entry = entries.get(member.name)
            if entry is None:
                continue
            shape = have[entry["name"]]
            rows[shape.name] = _load(writer, shape, entry, member, on_progress)
        writer.finish()
    return Restored(checked.manifest["position"], rows, checked.manifest,
                    checked.manifest_sha256)


def _check_target(entries, have: dict[str, TableShape], writer, display: str) -> None:
    for entry in entries:
        shape = have.get(entry["name"])
        if shape is None:
            raise BackupError(f"{display} has no table {entry['name']}, which the backup "
                              "holds (made by another version?)", code="BACKUP_INCOMPATIBLE")
        missing = [n for n, _ in entry["columns"] if n not in {c.name for c in shape.columns}]
        if missing:
            raise BackupError(f"table {entry['name']} of {display} has no column "
                              f"{', '.join(missing)}", code="BACKUP_INCOMPATIBLE")
    for shape in have.values():
        count = writer.count(shape) if shape.role != WITNESS else 0
        if count:
            raise BackupError(f"{display} is not empty: {shape.name} has {count} rows; "
                              "restore only into an empty store", code="TARGET_NOT_EMPTY")


def _load(writer, shape: TableShape, entry: dict[str, Any], member: Member,
          on_progress: Progress | None) -> int:
    columns = columns_of(entry)
    binary = [c.kind == "bytes" for c in columns]
    done = 0
    for batch in _batches(member.lines, binary):
        writer.insert(shape, columns, batch)
        done += len(batch)
        if on_progress is not None:
            on_progress(shape.name, done)
    return done


def _batches(lines: Iterator[bytes], binary: list[bool]) -> Iterator[list[list[object]]]:
    batch: list[list[object]] = []
    for line in lines:
        batch.append(decode_row(line, binary))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def witness_rows(path: Path, name: str) -> Iterator[dict[str, Any]]:
    """The rows of a witness table kept in the backup (e.g. the source's audit chain), as
    dicts by column name; none when the backup holds no such table."""
    stream = members(path)
    manifest, _ = read_manifest(next(stream), path)
    entry = next((e for e in manifest["tables"] if e["name"] == name), None)
    if entry is None:
        return
    shape = shape_of(entry)
    binary = [c.kind == "bytes" for c in shape.columns]
    names = [c.name for c in shape.columns]
    for member in stream:
        if member.name == entry["file"]:
            for line in member.lines:
                yield dict(zip(names, decode_row(line, binary), strict=True))
            return


def tradetape_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tradetape")
    except PackageNotFoundError:
        return "unknown"
