"""Verifiable exports and signed checkpoints, as an auditor uses them: an export checked with
nothing else (our `audit verify-export`, and the README's standalone script), checkpoints
signed by the operator's key, written on a schedule by the server."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.clock import SequentialIds, SteppingClock
from api.cli import main
from application.bootstrap import open_trading
from tests.integration.conftest import T0
from tests.projection_stubs import a_day_of_trading

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'audited.sqlite'}"
    app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("export"))
    try:
        a_day_of_trading(app)
    finally:
        app.close()
    assert main(["projections", "run", "audit", "--once", "--database", url]) == 0
    return url


def export(capsys, url: str, *options: str) -> list[dict]:
    capsys.readouterr()
    assert main(["audit", "export", *options, "--database", url]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def with_stored_bytes_changed(lines: list[dict], position: int) -> list[dict]:
    """One byte of one event's stored bytes changed (the deposit's amount: 1000 -> 9000)."""
    changed = [dict(line) for line in lines]
    line = next(entry for entry in changed if entry["position"] == position)
    stored = base64.b64decode(line["stored"])
    assert b"1000" in stored
    line["stored"] = base64.b64encode(stored.replace(b"1000", b"9000", 1)).decode()
    return changed


def standalone_verifier(tmp_path: Path) -> Path:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Anchoring and verifying the audit trail"):]
    script = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert script, "the README's standalone verifier"
    path = tmp_path / "verify_export.py"
    path.write_text(script.group(1))
    return path


def run_script(script: Path, *args: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", str(script), *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_an_export_carries_what_its_hash_covers(url, capsys):
    lines = export(capsys, url)

    first, deposit = lines[0], lines[1]
    assert first["previous_hash"] == "00" * 32
    assert deposit["previous_hash"] == first["hash"]
    assert b"1000" in base64.b64decode(deposit["stored"])
    assert deposit["topic"] == "domain.accounts:ExchangeAccount.Deposited"
    assert all(len(line["seal"]) == 64 for line in lines)
    assert {"position", "recorded_at", "aggregate_id", "summary", "data"} <= set(deposit)


def test_an_export_by_position_range_continues_the_chain(url, capsys):
    whole = export(capsys, url)

    part = export(capsys, url, "--from-position", "3", "--to-position", "6")

    assert [line["position"] for line in part] == [3, 4, 5, 6]
    assert part == whole[2:6]


def test_a_position_range_backwards_is_refused(url, capsys):
    assert main(["audit", "export", "--from-position", "5", "--to-position", "2",
                 "--database", url]) == 2
    assert "INVALID_POSITION" in capsys.readouterr().err


def test_verify_export_passes_a_real_export_and_names_a_changed_byte(url, capsys, tmp_path):
    checkpoints = tmp_path / "checkpoints.jsonl"
    assert main(["audit", "checkpoint", "--out", str(checkpoints), "--database", url]) == 0
    lines = export(capsys, url)
    good = write(tmp_path / "good.jsonl", lines)
    bad = write(tmp_path / "bad.jsonl", with_stored_bytes_changed(lines, 2))

    assert main(["audit", "verify-export", str(good), "--checkpoint", str(checkpoints)]) == 0
    assert "agrees with 1 checkpoint" in capsys.readouterr().out
    assert main(["audit", "verify-export", str(bad)]) == 1
    assert "line 2, position 2" in capsys.readouterr().out


def test_verify_export_finds_a_line_removed_and_a_log_cut_short(url, capsys, tmp_path):
    checkpoints = tmp_path / "checkpoints.jsonl"
    assert main(["audit", "checkpoint", "--out", str(checkpoints), "--database", url]) == 0
    lines = export(capsys, url)
    head = json.loads(checkpoints.read_text())["position"]

    gap = write(tmp_path / "gap.jsonl", lines[:3] + lines[4:])
    short = write(tmp_path / "short.jsonl", [line for line in lines if line["position"] < head])

    assert main(["audit", "verify-export", str(gap)]) == 1
    assert "previous_hash does not continue" in capsys.readouterr().out
    assert main(["audit", "verify-export", str(short), "--checkpoint", str(checkpoints)]) == 1
    assert "cut short" in capsys.readouterr().out


def test_the_readme_standalone_verifier_checks_a_real_export(url, capsys, tmp_path):
    checkpoints = tmp_path / "checkpoints.jsonl"
    assert main(["audit", "checkpoint", "--out", str(checkpoints), "--database", url]) == 0
    lines = export(capsys, url)
    script = standalone_verifier(tmp_path)
    good = write(tmp_path / "good.jsonl", lines)
    bad = write(tmp_path / "bad.jsonl", with_stored_bytes_changed(lines, 2))
    raw = good.read_bytes()
    flipped = tmp_path / "flipped.jsonl"  # one byte of the raw file: a topic's letter
    at = raw.index(b'"topic": "domain.') + len(b'"topic": "d')
    flipped.write_bytes(raw[:at] + b"O" + raw[at + 1:])

    passed = run_script(script, good, checkpoints)
    failed = run_script(script, bad)
    failed_flip = run_script(script, flipped)

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "intact" in passed.stdout
    assert failed.returncode == 1
    assert "line 2 (position 2)" in failed.stdout
    assert failed_flip.returncode == 1
    assert "line 1 (position 1)" in failed_flip.stdout


def test_a_signed_checkpoint_verifies_by_its_public_key_and_not_once_edited(url, capsys,
                                                                           tmp_path):
    key = tmp_path / "operator.key"
    assert main(["audit", "keygen", "--out", str(key)]) == 0
    public = re.search(r"public key: ([0-9a-f]{64})", capsys.readouterr().out).group(1)
    checkpoints = tmp_path / "checkpoints.jsonl"
    assert main(["audit", "checkpoint", "--sign", str(key), "--out", str(checkpoints),
                 "--actor", "alice", "--database", url]) == 0
    edited = tmp_path / "edited.jsonl"
    line = json.loads(checkpoints.read_text())
    edited.write_text(json.dumps({**line, "events": line["events"] - 1}) + "\n")
    capsys.readouterr()

    assert os.stat(key).st_mode & 0o777 == 0o600
    assert main(["audit", "keygen", "--out", str(key)]) == 2  # never overwritten
    assert main(["audit", "verify", "--checkpoint", str(checkpoints), "--public-key", public,
                 "--database", url]) == 0
    assert main(["audit", "verify", "--checkpoint", str(checkpoints), "--public-key",
                 "ab" * 32, "--database", url]) == 1
    assert main(["audit", "verify", "--checkpoint", str(edited), "--database", url]) == 1
    assert "signature" in capsys.readouterr().out
    recorded = [e for e in export(capsys, url) if e["aggregate_type"] == "AuditCheckpoint"]
    assert [(e["actor"], e["data"]["position"], e["data"]["public_key"]) for e in recorded] \
        == [("operator:alice", line["position"], public)]


def test_a_checkpoint_that_cannot_be_written_out_is_not_taken(url, capsys, tmp_path):
    app = open_trading(url)
    try:
        head = app.recorder.max_notification_id()
    finally:
        app.close()

    code = main(["audit", "checkpoint", "--out", str(tmp_path / "missing" / "c.jsonl"),
                 "--database", url])

    assert code == 1
    assert "CHECKPOINT_UNWRITABLE" in capsys.readouterr().err
    app = open_trading(url)
    try:
        assert app.recorder.max_notification_id() == head  # no AuditCheckpoint recorded
    finally:
        app.close()


def test_the_server_appends_checkpoints_on_a_schedule(url, tmp_path):
    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    checkpoints = tmp_path / "scheduled.jsonl"
    settings = ServerSettings.from_environ({
        "TRADETAPE_DATABASE_URL": url, "TRADETAPE_AUDIT_CHECKPOINT_FILE": str(checkpoints),
        "TRADETAPE_AUDIT_CHECKPOINT_SECONDS": "1"})
    runtime = open_runtime(settings)
    runtime.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
                not checkpoints.exists() or len(checkpoints.read_text().splitlines()) < 2):
            time.sleep(0.2)
    finally:
        runtime.stop()

    written = [json.loads(line) for line in checkpoints.read_text().splitlines()]
    assert len(written) >= 2
    assert all(c["format"] == "tradetape-audit-checkpoint" for c in written)
    assert main(["audit", "verify", "--checkpoint", str(checkpoints), "--database", url]) == 0


def test_checkpoint_seconds_out_of_range_is_refused():
    from application.server_settings import ServerSettings
    from domain.errors import DomainError

    with pytest.raises(DomainError, match="TRADETAPE_AUDIT_CHECKPOINT_SECONDS"):
        ServerSettings.from_environ({"TRADETAPE_AUDIT_CHECKPOINT_SECONDS": "0"})
