"""The backup file: a gzip-compressed tar of ``manifest.json``, ``manifest.sha256`` and one
JSON-lines file per table (``tables/<name>.jsonl``, one JSON array per row in the
manifest's column order; a ``bytes`` column as base64, so stored events keep their exact
bytes). The manifest's SHA-256 is printed and written beside the file (``FILE.sha256``, in
``sha256sum`` format), so a changed manifest is caught, and each table file's SHA-256, row
count and positions are in the manifest, so a changed row is caught.

Written to ``FILE.partial`` and renamed when complete: a file under the final name is
always whole.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.backup import BackupError, Column, TableShape

FORMAT, FORMAT_VERSION = "tradetape-backup", 1
MANIFEST, MANIFEST_HASH = "manifest.json", "manifest.sha256"
SIDECAR_SUFFIX = ".sha256"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def recorded_hashes(path: Path) -> dict[str, str]:
    """What ``FILE.sha256`` records: the manifest's hash (``manifest.json``) and the whole
    file's (its name); empty when there is no such file."""
    try:
        text = sidecar(path).read_text()
    except OSError:
        return {}
    pairs = (line.split(None, 1) for line in text.splitlines() if line.strip())
    return {name.strip(): digest.lower() for digest, name in (p for p in pairs if len(p) == 2)}


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_DECODER = json.JSONDecoder()


def encode_row(row: Sequence[object]) -> bytes:
    values = [binascii.b2a_base64(v, newline=False).decode() if isinstance(v, bytes) else v
              for v in row]
    return _ENCODER.encode(values).encode() + b"\n"


def decode_row(line: bytes, binary: Sequence[bool]) -> list[object]:
    values = _DECODER.raw_decode(line.decode())[0]
    if not isinstance(values, list) or len(values) != len(binary):
        raise ValueError(f"not a row of {len(binary)} values")
    return [_bytes_of(v) if b and v is not None else v
            for v, b in zip(values, binary, strict=True)]


def _bytes_of(value: object) -> bytes:
    """A bytes column's base64 text; anything else (a changed byte can turn it into a
    number) is an unreadable row, never a TypeError."""
    if not isinstance(value, str):
        raise ValueError(f"a bytes column holds {type(value).__name__}, not base64 text")
    return binascii.a2b_base64(value, strict_mode=True)


@dataclass
class TableFile:
    """One table's rows being written: counted, hashed and its positions followed."""

    shape: TableShape
    out: Any  # a binary file
    rows: int = 0
    size: int = 0
    first: int | None = None
    last: int | None = None
    ordered: bool = True
    digest: Any = field(default_factory=hashlib.sha256)

    def write(self, batch: Sequence[Sequence[object]]) -> None:
        at = _position_index(self.shape)
        for row in batch:
            line = encode_row(row)
            self.out.write(line)
            self.digest.update(line)
            self.size += len(line)
            self.rows += 1
            if at is not None:
                self._follow(row[at])

    def _follow(self, position: Any) -> None:
        if self.last is not None and position <= self.last:
            self.ordered = False
        self.first = position if self.first is None else self.first
        self.last = position

    def entry(self) -> dict[str, Any]:
        entry = {"name": self.shape.name, "role": self.shape.role,
                 "file": member_name(self.shape.name),
                 "columns": [[c.name, c.kind] for c in self.shape.columns],
                 "application": self.shape.application, "position": self.shape.position,
                 "rows": self.rows, "bytes": self.size, "sha256": self.digest.hexdigest()}
        if self.shape.position:
            entry.update(first_position=self.first, last_position=self.last,
                         gaps=gaps(self.rows, self.last))
        return entry


def gaps(rows: int, last: int | None) -> int:
    """Positions below the last one that hold no row (the log's own holes, which PostgreSQL
    leaves when an append rolls back): kept as they are, never closed."""
    return 0 if last is None else last - rows


def member_name(table: str) -> str:
    return f"tables/{table}.jsonl"


def _position_index(shape: TableShape) -> int | None:
    names = [c.name for c in shape.columns]
    return names.index(shape.position) if shape.position in names else None


class ArchiveWriter:
    """Each table's rows compressed while they are read (into a temporary folder beside
    ``path``), then the archive: the manifest first, then the tables.

    The archive is one tar, gzip-compressed as a series of gzip members (a gzip file may
    hold several; readers see their concatenation): each table's member is the one made
    while reading it, so its rows are never written twice nor compressed after the read."""

    def __init__(self, path: Path):
        self.path = path
        self.folder = tempfile.TemporaryDirectory(prefix=".backup-", dir=path.parent)
        self.files: list[tuple[TableFile, Path]] = []
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="backup-gzip")

    def table(self, shape: TableShape) -> TableFile:
        if self.files:
            self.files[-1][0].out.close()
        file = Path(self.folder.name) / f"{len(self.files)}.jsonl.gz"
        table = TableFile(shape, _Compressing(file, self.pool))
        self.files.append((table, file))
        return table

    def finish(self, manifest: dict[str, Any]) -> str:
        """Write the archive; returns the manifest's SHA-256 (also written beside it)."""
        if self.files:
            self.files[-1][0].out.close()
        manifest = {**manifest, "tables": [t.entry() for t, _ in self.files]}
        body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        digest = hashlib.sha256(body).hexdigest()
        partial = self.path.with_name(self.path.name + ".partial")
        whole = hashlib.sha256()
        try:
            with partial.open("wb") as file:
                out = _Tee(file, whole)
                out.write(_gz(_entry(MANIFEST, body) +
                              _entry(MANIFEST_HASH, f"{digest}  {MANIFEST}\n".encode())))
                for table, rows in self.files:
                    out.write(_gz(_header(member_name(table.shape.name), table.size)))
                    with rows.open("rb") as packed:
                        shutil.copyfileobj(packed, out)
                    out.write(_gz(_padding(table.size)))
                out.write(_gz(bytes(2 * tarfile.BLOCKSIZE)))  # the tar's end
            os.replace(partial, self.path)
        finally:
            partial.unlink(missing_ok=True)
        # `tar xzf FILE manifest.json && sha256sum -c FILE.sha256` checks both by hand.
        sidecar(self.path).write_text(f"{digest}  {MANIFEST}\n"
                                      f"{whole.hexdigest()}  {self.path.name}\n")
        return digest

    def close(self) -> None:
        for table, _ in self.files:
            table.out.close()
        self.pool.shutdown()
        self.folder.cleanup()


class _Tee:
    """Writes to ``out``, every byte into ``digest`` too."""

    def __init__(self, out: Any, digest: Any):
        self.out, self.digest = out, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


class _Compressing(io.RawIOBase):
    """A gzip file written by a thread of its own (zlib works outside the GIL), so the next
    rows are read and encoded while these are compressed; at most two chunks wait."""

    CHUNK = 1 << 20

    def __init__(self, path: Path, pool: ThreadPoolExecutor):
        self.raw = path.open("wb")
        self.gz = gzip.GzipFile(fileobj=self.raw, mode="wb", compresslevel=LEVEL, mtime=0)
        self.pool, self.chunks, self.waiting = pool, [], 0
        self.pending: Future | None = None

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.chunks.append(data)
        self.waiting += len(data)
        if self.waiting >= self.CHUNK:
            self._hand_over()
        return len(data)

    def _hand_over(self) -> None:
        chunk, self.chunks, self.waiting = b"".join(self.chunks), [], 0
        if self.pending is not None:
            self.pending.result()
        self.pending = self.pool.submit(self.gz.write, chunk)

    def close(self) -> None:
        if self.raw.closed:
            return
        try:
            self._hand_over()
            if self.pending is not None:
                self.pending.result()
            self.gz.close()
        finally:
            self.raw.close()
            super().close()


LEVEL = 6


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=LEVEL, mtime=0)


def _header(name: str, size: int) -> bytes:
    """A tar header: no owner, mode or time of a temporary file (the manifest says when)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return bytes(-size % tarfile.BLOCKSIZE)


def _entry(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + data + _padding(len(data))


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    lines: Iterator[bytes]


def members(path: Path, whole: Any = None) -> Iterator[Member]:
    """The archive's members in order, each read as a stream of lines (once). ``whole``:
    a hashlib object fed every byte of the file, up to its end."""
    try:
        # gzip's own reader: it checks the CRC and length at the end (tarfile's does not).
        with path.open("rb") as raw, \
                gzip.GzipFile(fileobj=_Hashing(raw, whole) if whole else raw) as packed, \
                tarfile.open(fileobj=packed, mode="r|") as tar:
            for info in tar:
                stream = tar.extractfile(info) if info.isfile() else None
                if stream is not None:
                    yield Member(info.name, _guarded(stream, path))
            while packed.read(1 << 20):  # the tar's padding and the gzip trailer, checked
                pass
    except FileNotFoundError:
        raise BackupError(f"no backup file {path}", code="BACKUP_NOT_FOUND") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise _unreadable(path, error) from None


class _Hashing(io.RawIOBase):
    """A file read through, every byte into ``digest``."""

    def __init__(self, raw: Any, digest: Any):
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        return n


def _guarded(stream: Iterable[bytes], path: Path) -> Iterator[bytes]:
    """A member's lines; a broken file found while reading them is a BackupError too."""
    try:
        yield from stream
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: Exception) -> BackupError:
    """A gzip CRC, a truncated file, bytes that are no tar: the file is damaged."""
    return BackupError(f"{path} is not a readable backup: {error}", code="BACKUP_CORRUPT")


def read_manifest(first: Member, path: Path) -> tuple[dict[str, Any], str]:
    """The manifest (the archive's first member) and its SHA-256."""
    if first.name != MANIFEST:
        raise BackupError(f"{path} does not start with {MANIFEST}", code="BACKUP_CORRUPT")
    body = b"".join(first.lines)
    try:
        manifest = json.loads(body)
    except ValueError:
        raise BackupError(f"{path}: {MANIFEST} is not JSON", code="BACKUP_CORRUPT") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a tradetape backup", code="BACKUP_CORRUPT")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path} is format version {manifest.get('format_version')}; this "
                          f"tradetape reads version {FORMAT_VERSION}",
                          code="BACKUP_UNSUPPORTED")
    return manifest, hashlib.sha256(body).hexdigest()


def columns_of(entry: dict[str, Any]) -> tuple[Column, ...]:
    return tuple(Column(name, kind) for name, kind in entry["columns"])


def shape_of(entry: dict[str, Any]) -> TableShape:
    return TableShape(entry["name"], entry["role"], columns_of(entry), entry.get("position"),
                      entry.get("application"))
