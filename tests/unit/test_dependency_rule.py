"""The dependency rule, read from every module's imports.

``domain`` depends on nothing of ours but itself; ``application`` on ``domain``; adapters
implement ports and only the composition root (``application/bootstrap.py`` and its parts,
``application/bootstrap_*.py``) chooses them; nothing in ``domain`` or
``application`` reads the clock or a random source (that is ``adapters/clock.py``'s job).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "application", "projections", "adapters", "api")
OURS = (*LAYERS, "tests", "scripts")
STDLIB = sys.stdlib_module_names


def modules(*layers: str) -> list[Path]:
    return sorted(p for layer in layers for p in (ROOT / layer).rglob("*.py"))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def imports_of(source: str, path: Path) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of everything ``source`` imports, lazy imports included.
    ``from a import b`` yields ``a.b``, so a submodule imported that way is named exactly."""
    package = list(path.relative_to(ROOT).parent.parts)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                yield node.lineno, module if alias.name == "*" else f"{module}.{alias.name}"


def violations(layers: tuple[str, ...], forbidden, exempt: tuple[str, ...] = ()) -> list[str]:
    """Every import in ``layers`` for which ``forbidden(name)`` is true."""
    found = []
    for path in modules(*layers):
        relative = path.relative_to(ROOT).as_posix()
        if relative in exempt:
            continue
        for line, name in imports_of(path.read_text(), path):
            if forbidden(name, relative):
                found.append(f"{relative}:{line} imports {name}")
    return found


# --- layers ---------------------------------------------------------------------------------


def test_domain_imports_only_the_standard_library_itself_and_eventsourcing_domain() -> None:
    def forbidden(name: str, _: str) -> bool:
        top = name.partition(".")[0]
        if top in OURS:
            return top != "domain"
        return top not in STDLIB and not within(name, "eventsourcing.domain")

    assert violations(("domain",), forbidden) == []


def is_composition_root(module: str) -> bool:
    """``application/bootstrap.py`` and the parts it wires in modules of their own."""
    return module == "application/bootstrap.py" or (
        module.startswith("application/bootstrap_") and module.count("/") == 1)


def test_application_imports_no_adapters_api_or_projections() -> None:
    def forbidden(name: str, module: str) -> bool:
        if within(name, "adapters") or within(name, "projections"):
            # The composition root wires adapters and the in-process read models.
            return not is_composition_root(module)
        return within(name, "api")

    assert violations(("application",), forbidden) == []


def test_projections_import_no_adapters_or_api() -> None:
    def forbidden(name: str, _: str) -> bool:
        return within(name, "adapters") or within(name, "api")

    assert violations(("projections",), forbidden) == []


# What adapters may import of the application: read from the environment, and of nothing
# of ours (the seam: whether a fast path through the library's internals may run).
ADAPTERS_MAY_IMPORT = ("application.settings", "application.library_seam")


def test_adapters_import_no_api_and_no_application_but_its_settings() -> None:
    def forbidden(name: str, _: str) -> bool:
        if within(name, "application"):
            return not any(within(name, allowed) for allowed in ADAPTERS_MAY_IMPORT)
        return within(name, "api")

    assert violations(("adapters",), forbidden) == []


def test_the_library_seam_imports_nothing_of_ours() -> None:
    def forbidden(name: str, _: str) -> bool:
        return name.partition(".")[0] in OURS

    seam = ROOT / "application" / "library_seam.py"
    assert seam.exists()
    assert [name for _, name in imports_of(seam.read_text(), seam)
            if forbidden(name, "")] == []


# --- clock and randomness -------------------------------------------------------------------

_CLOCK_READS = {"now", "utcnow", "today"}
_FORBIDDEN_FROM = {"uuid": {"uuid1", "uuid4"}, "time": {"time", "time_ns"}}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def clock_and_random_uses(source: str) -> list[str]:
    """``line: what`` for each read of the wall clock or of a random source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        what = None
        if isinstance(node, ast.Attribute):
            owner = _dotted(node.value).split(".")[-1]
            if node.attr in _CLOCK_READS and owner in ("datetime", "date"):
                what = f"{owner}.{node.attr}"
            elif node.attr in ("time", "time_ns") and owner == "time":
                what = f"time.{node.attr}"
            elif node.attr in ("uuid1", "uuid4", "random"):
                what = _dotted(node)
        elif isinstance(node, ast.Name) and node.id in ("uuid1", "uuid4"):
            what = node.id
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if within(a.name, "random")]
            what = ", ".join(f"import {n}" for n in names) or None
        elif isinstance(node, ast.ImportFrom) and node.module:
            if within(node.module, "random"):
                what = f"from {node.module} import ..."
            taken = {a.name for a in node.names} & _FORBIDDEN_FROM.get(node.module, set())
            if taken:
                what = f"from {node.module} import {', '.join(sorted(taken))}"
        if what:
            found.append(f"{getattr(node, 'lineno', '?')}: {what}")
    return found


@pytest.mark.parametrize(
    "path",
    modules("domain", "application"),
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_domain_and_application_read_no_clock_and_no_randomness(path: Path) -> None:
    assert clock_and_random_uses(path.read_text()) == [], (
        f"{path.relative_to(ROOT)}: take a Cause, a Clock or an IdSource instead "
        "(adapters/clock.py reads the wall clock and random sources)"
    )


# --- the checks themselves see what they must -----------------------------------------------


@pytest.mark.parametrize(
    "snippet",
    [
        "from datetime import datetime\nx = datetime.now(UTC)",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import time\nx = time.time()",
        "from time import time",
        "import uuid\nx = uuid.uuid4()",
        "import uuid\nx = uuid.uuid1()",
        "from uuid import uuid4",
        "import random",
        "from random import choice",
        "import numpy as np\nx = np.random.default_rng()",
    ],
)
def test_clock_and_random_check_finds_each_forbidden_use(snippet: str) -> None:
    assert clock_and_random_uses(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        "x = self.clock.now()",
        "from datetime import UTC, datetime\nx = datetime(2024, 1, 1, tzinfo=UTC)",
        "from uuid import UUID, uuid5\nx = uuid5(NS, 'a')",
        "from time import sleep",
    ],
)
def test_clock_and_random_check_lets_injected_and_pure_uses_pass(snippet: str) -> None:
    assert clock_and_random_uses(snippet) == []


def test_imports_of_resolves_relative_and_lazy_imports() -> None:
    source = "def f():\n    from ..adapters import clock\n    import api.cli\nfrom . import x\n"

    found = [name for _, name in imports_of(source, ROOT / "application" / "engine.py")]

    assert sorted(found) == ["adapters.clock", "api.cli", "application.x"]


def test_every_layer_has_modules_to_check() -> None:
    assert all(modules(layer) for layer in LAYERS)


def test_the_composition_root_is_bootstrap_and_its_parts_only() -> None:
    assert is_composition_root("application/bootstrap.py")
    assert is_composition_root("application/bootstrap_stores.py")
    assert not is_composition_root("application/trading.py")
    assert not is_composition_root("application/billing/bootstrap_x.py")
