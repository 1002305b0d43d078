"""``tradetape serve --role``: roles other than ``all`` share a PostgreSQL database with other
processes; on SQLite they are refused by name, before anything is created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TRADETAPE = Path(sys.executable).with_name("tradetape")


@pytest.mark.parametrize("role", ["api", "engine", "projections"])
def test_a_role_other_than_all_on_sqlite_is_refused_by_name(tmp_path, role):
    database = tmp_path / "one.sqlite"
    run = subprocess.run([str(TRADETAPE), "serve", "--role", role, "--database",
                          f"sqlite:///{database}"], capture_output=True, text=True,
                         timeout=60, check=False, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "TRADETAPE_SECRET_KEY": "x" * 40})
    assert run.returncode != 0, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "ROLE_NEEDS_POSTGRES" in lines[0], run.stderr
    assert f"--role {role} needs PostgreSQL" in lines[0]
    assert not database.exists()


def test_an_unknown_role_is_refused():
    run = subprocess.run([str(TRADETAPE), "serve", "--role", "worker"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 2 and "invalid choice: 'worker'" in run.stderr
