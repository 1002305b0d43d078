"""Which sources the committed dashboard build was made from. ``scripts/build_dashboard``
builds api/dashboard/ (TypeScript) into api/static/dashboard/ and records the SHA-256 of the
sources here computed in ``BUILD.json``; a unit test recomputes it, so a change to the
sources committed without a rebuild fails. No FastAPI here: the build script runs it.

    python -m api.dashboard_build          # write BUILD.json for the sources as they are
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

API_DIR = Path(__file__).parent
SOURCES_DIR = API_DIR / "dashboard"
BUILD_DIR = API_DIR / "static" / "dashboard"
BUILD_INFO = BUILD_DIR / "BUILD.json"
# What the build reads: the lock pins every package; node_modules is derived from it.
SOURCE_FILES = ("index.html", "package.json", "package-lock.json", "tsconfig.json",
                "vite.config.ts")
SOURCE_TREES = ("src",)


def source_files(root: Path = SOURCES_DIR) -> list[Path]:
    files = [root / name for name in SOURCE_FILES]
    for tree in SOURCE_TREES:
        files += [p for p in (root / tree).rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def source_hash(root: Path = SOURCES_DIR) -> str:
    """SHA-256 over each source's relative path and bytes, in path order."""
    digest = hashlib.sha256()
    for path in source_files(root):
        name = path.relative_to(root).as_posix().encode()
        body = path.read_bytes()
        digest.update(b"%d:%s%d:" % (len(name), name, len(body)))
        digest.update(body)
    return digest.hexdigest()


def recorded_hash(build_info: Path = BUILD_INFO) -> str | None:
    if not build_info.is_file():
        return None
    return json.loads(build_info.read_text(encoding="utf-8")).get("source_sha256")


def write_build_info(build_info: Path = BUILD_INFO) -> str:
    digest = source_hash()
    build_info.write_text(json.dumps({"source_sha256": digest}, indent=1) + "\n",
                          encoding="utf-8")
    return digest


if __name__ == "__main__":
    import sys

    sys.stdout.write(f"dashboard sources sha256 {write_build_info()} recorded in {BUILD_INFO}\n")
