"""A rebuild split across processes answers as one in a single process does: a named error
raised in a rebuild process comes back with its code and message (it came back as
``REBUILD_FAILED`` with the child's traceback as its message, which reached the user)."""

from __future__ import annotations

import logging

import pytest

from projections.rebuild import _in_processes
from projections.runner import ProjectionError


def test_a_named_error_in_a_rebuild_process_keeps_its_code_and_no_traceback(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    with pytest.raises(ProjectionError) as refused:
        _in_processes(url, [["no_such_projection"]], until=0, batch_size=10,
                      on_progress=None, start={"no_such_projection": 0}, keyless=[])
    assert refused.value.code == "UNKNOWN_PROJECTION"
    assert "no_such_projection" in refused.value.message
    assert "Traceback" not in refused.value.message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_unnamed_failure_in_a_rebuild_process_is_logged_not_shown(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'events.sqlite'}"  # cannot be opened
    with pytest.raises(ProjectionError) as failed:
        _in_processes(url, [["audit"]], until=0, batch_size=10, on_progress=None,
                      start={"audit": 0}, keyless=[])
    assert failed.value.code == "REBUILD_FAILED"
    assert "Traceback" not in failed.value.message
    assert [r for r in caplog.records if "Traceback" in r.getMessage()]
