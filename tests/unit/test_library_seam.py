"""The seam that says whether a fast path through eventsourcing's internals may run
(application/library_seam.py): the new switch, the shipped ones, and the pinned version."""

from __future__ import annotations

import logging

import pytest

from application import library_seam
from application.library_seam import PATHS, fast_path

SEAM_LOG = "tradetape.library"
EVERY_SWITCH = (library_seam.LIBRARY_PATHS_ENV, library_seam.LIBRARY_APPEND_ENV,
                library_seam.BULK_LOAD_ENV, library_seam.OWNER_SCAN_ENV)


@pytest.fixture(autouse=True)
def _no_switch_set(monkeypatch):
    for name in EVERY_SWITCH:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(library_seam, "_warned", set())


@pytest.fixture
def another_version(monkeypatch):
    monkeypatch.setattr(library_seam, "installed_version", lambda: "9.6.0")


def on() -> set[str]:
    return {name for name in PATHS if fast_path(name)}


def test_the_installed_eventsourcing_is_the_pinned_one():
    """Upgrading the library turns every fast path off (slower starts, appends and reads):
    whoever upgrades it sees this fail and checks the internals before moving the pin."""
    from importlib.metadata import version

    assert version("eventsourcing") == library_seam.PINNED == "9.5.6"


def test_the_version_read_beside_the_package_is_importlib_metadatas():
    """Read without importing importlib.metadata (a command's start), the same version."""
    from importlib.metadata import version

    assert library_seam.installed_version.__wrapped__() == version("eventsourcing")


@pytest.mark.parametrize("found", [[], ["9.5.6", "9.6.0"]])
def test_no_single_metadata_beside_the_package_is_left_to_importlib_metadata(
        tmp_path, monkeypatch, found):
    """None, or two versions installed over each other: the seam asks importlib.metadata."""
    from importlib.metadata import version

    import eventsourcing

    (tmp_path / "eventsourcing").mkdir()
    for number in found:
        info = tmp_path / f"eventsourcing-{number}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Name: eventsourcing\nVersion: {number}\n\n")
    monkeypatch.setattr(eventsourcing, "__file__", str(tmp_path / "eventsourcing" / "__init__.py"))
    assert library_seam._version_beside_package() is None
    assert library_seam.installed_version.__wrapped__() == version("eventsourcing")


def test_the_version_is_the_one_metadata_beside_the_package(tmp_path, monkeypatch):
    import eventsourcing

    (tmp_path / "eventsourcing").mkdir()
    info = tmp_path / "eventsourcing-9.6.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.4\nName: eventsourcing\n"
                                   "Version: 9.6.0\n\nVersion: not a header\n")
    monkeypatch.setattr(eventsourcing, "__file__", str(tmp_path / "eventsourcing" / "__init__.py"))
    assert library_seam.installed_version.__wrapped__() == "9.6.0"


def test_the_package_pins_eventsourcing_to_the_seams_exact_version():
    """An install from pyproject.toml gets the version the seam was written against, not
    a later 9.5.x whose internals nobody checked (every fast path would turn off)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = [d for d in project["project"]["dependencies"] if d.startswith("eventsourcing")]
    assert pins == [f"eventsourcing=={library_seam.PINNED}"]


def test_every_fast_path_runs_on_the_pinned_version_with_no_switch_set():
    assert on() == {"append", "topic_reads", "bulk_load", "encoder", "sql_rebuild",
                    "memory_store", "owner_scan", "log_reads", "stored_events"}


@pytest.mark.parametrize("value", ["1", "yes", "true", " TRUE "])
def test_the_library_paths_switch_turns_every_fast_path_off(monkeypatch, value):
    monkeypatch.setenv(library_seam.LIBRARY_PATHS_ENV, value)
    assert on() == set()


@pytest.mark.parametrize("value", ["0", "", "no"])
def test_the_library_paths_switch_set_to_no_leaves_them_on(monkeypatch, value):
    monkeypatch.setenv(library_seam.LIBRARY_PATHS_ENV, value)
    assert on() == set(PATHS)


def test_the_shipped_switches_each_turn_their_own_path_off(monkeypatch):
    monkeypatch.setenv("TRADETAPE_LIBRARY_APPEND", "1")
    assert on() == set(PATHS) - {"append"}
    monkeypatch.setenv("TRADETAPE_LIBRARY_APPEND", "no")
    monkeypatch.setenv("TRADETAPE_BULK_LOAD", "0")
    assert on() == set(PATHS) - {"bulk_load"}
    monkeypatch.setenv("TRADETAPE_BULK_LOAD", "1")
    monkeypatch.setenv("TRADETAPE_OWNER_SCAN_SQL", "0")
    assert on() == set(PATHS) - {"owner_scan"}
    monkeypatch.setenv("TRADETAPE_OWNER_SCAN_SQL", "1")
    assert on() == set(PATHS)


def test_an_applications_own_environment_is_where_its_switches_are_read():
    env = {library_seam.LIBRARY_APPEND_ENV: "yes"}
    assert not fast_path("append", env) and fast_path("append")
    assert not fast_path("topic_reads", {library_seam.LIBRARY_PATHS_ENV: "1"})


def test_the_append_switch_refuses_a_value_it_never_accepted(monkeypatch):
    monkeypatch.setenv(library_seam.LIBRARY_APPEND_ENV, "maybe")
    with pytest.raises(ValueError, match="maybe"):
        fast_path("append")


def test_a_name_the_seam_does_not_know_is_refused():
    with pytest.raises(ValueError, match="topic_read"):
        fast_path("topic_read")


def test_another_installed_version_turns_every_fast_path_off_and_says_so_once(
        another_version, caplog):
    caplog.set_level(logging.WARNING, SEAM_LOG)
    assert on() == set() and on() == set()
    said = [r.getMessage() for r in caplog.records if r.name == SEAM_LOG]
    assert len(said) == 1
    assert "9.6.0" in said[0] and "9.5.6" in said[0]


def test_the_pinned_version_says_nothing(caplog):
    caplog.set_level(logging.DEBUG, SEAM_LOG)
    on()
    assert [r for r in caplog.records if r.name == SEAM_LOG] == []
