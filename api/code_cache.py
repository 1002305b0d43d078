"""Compiled code of the methods dataclasses generate, kept between runs.

On Python 3.11 every dataclass compiles the source of each method it generates (``__init__``,
``__repr__``, ``__eq__``, ...) with ``exec`` when its class is defined: a backtest defines
about 70 dataclasses (400 methods, a fifth of what its imports execute), the server about 300
(1,500 methods, ~0.15 s). The sources are the same from one run to the next, so their code
objects are kept in a marshal file beside our bytecode, keyed by the exact source text: a
source that changed misses and is compiled as before, and a file written by another Python
(its bytecode magic differs) is ignored. Python 3.13 compiles a class's methods in one go,
which makes this worth much less there.

Like ``.pyc`` files, the cache is written only where Python may write bytecode
(``PYTHONDONTWRITEBYTECODE`` unset), except by an explicit ``python -m api.code_cache``, which
``scripts/_setup.sh`` runs after installing, as ``compileall`` does for the modules.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import marshal
import os
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from typing import Any

CACHE_FILE = (Path(__file__).resolve().parent / "__pycache__"
              / f"dataclass-code.{sys.implementation.cache_tag}.marshal")
# Sources change as code is edited; past this many the file keeps only a run's own.
MAX_ENTRIES = 20_000
# What the commands import: warming these covers every dataclass a command defines.
WARM_MODULES = ("api.commands.backtest", "application.backtest", "application.trading",
                "adapters.exchanges.paper", "adapters.event_store.memory", "api.server")


class DataclassCodeCache:
    """Stands in for ``exec`` inside the ``dataclasses`` module (a module global shadows the
    builtin), serving a cached code object for a source it has compiled before. Each code
    object stays marshalled until it is used: the server's methods are no load on a
    backtest's start."""

    def __init__(self, path: Path = CACHE_FILE):
        self.path = path
        self.codes: dict[str, bytes] = _read(path)
        self.compiled = 0
        self.used: set[str] = set()

    def exec(self, source: Any, globals: Any = None, locals: Any = None, /) -> None:
        if type(source) is str:
            self.used.add(source)
            marshalled = self.codes.get(source)
            if marshalled is None:
                # dataclasses' own exec inherits no __future__ flags: neither does this.
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.codes[source] = marshal.dumps(code)
                self.compiled += 1
            else:
                code = marshal.loads(marshalled)
            source = code
        builtins.exec(source, globals, locals)

    def save(self, *, explicit: bool = False) -> None:
        """Write the cache if this run compiled anything new; never fails the caller."""
        if not self.compiled or (sys.dont_write_bytecode and not explicit):
            return
        codes = self.codes
        if len(codes) > MAX_ENTRIES:  # mostly sources edited away: keep this run's
            codes = {source: codes[source] for source in self.used}
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(exist_ok=True)
            temporary.write_bytes(MAGIC_NUMBER + marshal.dumps(codes))
            os.replace(temporary, self.path)  # readers see the old file or the new one
        except OSError:
            temporary.unlink(missing_ok=True)
            return
        self.compiled = 0


_installed: dict[str, DataclassCodeCache] = {}


def install(path: Path = CACHE_FILE) -> DataclassCodeCache:
    """Serve dataclasses' generated methods from the cache from now on (idempotent).
    ``TRADETAPE_CODE_CACHE=off`` leaves dataclasses alone."""
    cache = _installed.get("cache")
    if cache is None:
        cache = _installed["cache"] = DataclassCodeCache(path)
        if os.environ.get("TRADETAPE_CODE_CACHE", "on").lower() != "off":
            dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    return cache


def save() -> None:
    if "cache" in _installed:
        _installed["cache"].save()


def _read(path: Path) -> dict[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    if not data.startswith(MAGIC_NUMBER):
        return {}
    try:
        codes = marshal.loads(data[len(MAGIC_NUMBER):])
    except (EOFError, ValueError, TypeError):
        return {}
    return codes if isinstance(codes, dict) else {}


def warm() -> int:
    """Define every dataclass the commands define and write the cache; the number cached."""
    cache = install()
    for module in WARM_MODULES:
        importlib.import_module(module)
    cache.save(explicit=True)
    return len(cache.codes)


if __name__ == "__main__":
    sys.stderr.write(f"{warm()} generated methods cached in {CACHE_FILE}\n")
