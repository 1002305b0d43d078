"""The audit trial: each way someone with write access to the database could tamper with the
log is caught by ``audit verify --checkpoint`` against a checkpoint taken before it, naming
the first bad position, and ``projections rebuild`` refuses to re-chain over it."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from adapters.clock import SequentialIds, SteppingClock
from api.cli import main
from application.bootstrap import open_trading
from application.settings import _connect_kwargs, parse_database_url
from tests.integration.conftest import T0
from tests.projection_stubs import a_day_of_trading, backtest, candle_rows, saw_levels


class Database:
    """Raw SQL on the store, as an intruder with the database password would write it."""

    def __init__(self, url: str):
        self.database = parse_database_url(url)
        self.pg = self.database.kind == "postgres"
        schema = self.database.env.get("POSTGRES_SCHEMA", "")
        self.events = f'"{schema}".trading_events' if self.pg else "stored_events"
        # On SQLite the audit log is in the read models' own file, attached as "views".
        self.audit = f'"{schema}".audit_log' if self.pg else "views.audit_log"
        self.seals = f'"{schema}".event_seals' if self.pg else "event_seals"
        self.pos = "notification_id" if self.pg else "rowid"

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        if self.pg:
            import psycopg

            with psycopg.connect(**_connect_kwargs(self.database.env)) as conn:
                yield _Marks(conn)
        else:
            with sqlite3.connect(self.database.sqlite_path) as conn:
                conn.execute("ATTACH DATABASE ? AS views", (str(self.database.views_path),))
                yield conn
            conn.close()

    def run(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.cursor() as c:
            return list(c.execute(sql, params).fetchall() if sql.startswith("SELECT")
                        else (c.execute(sql, params), [])[1])

    def state(self, position: int) -> bytes:
        return bytes(self.run(f"SELECT state FROM {self.events} WHERE {self.pos} = ?",
                              (position,))[0][0])

    def head(self) -> int:
        return self.run(f"SELECT MAX({self.pos}) FROM {self.events}")[0][0]


class _Marks:
    def __init__(self, conn: Any):
        self.conn = conn

    def execute(self, sql: str, params: tuple = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)


@pytest.fixture
def trial(persistent_store_url, tmp_path) -> Iterator[tuple[str, Database, str, int]]:
    """A store with a day of trading and a backtest, audited and checkpointed: ``(url,
    database, checkpoint file, checkpoint position)``."""
    url = persistent_store_url
    app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("trial"))
    try:
        a_day_of_trading(app)
        backtest(app, candle_rows(saw_levels(2)), seed="one")
    finally:
        app.close()
    checkpoints = tmp_path / "checkpoints.jsonl"
    assert main(["projections", "run", "--once", "--database", url]) == 0
    assert main(["audit", "checkpoint", "--out", str(checkpoints), "--database", url]) == 0
    assert main(["projections", "run", "--once", "--database", url]) == 0
    position = json.loads(checkpoints.read_text())["position"]
    yield url, Database(url), str(checkpoints), position


def verify(capsys, url: str, checkpoints: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", "--checkpoint", checkpoints, "--database", url])
    out = capsys.readouterr().out
    return code, out


def first_bad(out: str) -> int:
    found = re.search(r"first bad position (\d+)", out)
    assert found, out
    return int(found.group(1))


def rebuild_refused(capsys, url: str) -> str:
    capsys.readouterr()
    assert main(["projections", "rebuild", "audit", "--database", url]) == 1
    return capsys.readouterr().err


def test_an_untouched_store_passes_against_its_checkpoint(trial, capsys):
    url, _, checkpoints, position = trial

    code, out = verify(capsys, url, checkpoints)

    assert code == 0, out
    assert f"agrees with all 1 (last at position {position}" in out
    assert "seals:" in out and "sealed with key" in out


def test_deleting_the_tail_with_its_audit_rows_is_truncation(trial, capsys):
    url, db, checkpoints, position = trial
    db.run(f"DELETE FROM {db.events} WHERE {db.pos} > ?", (position - 3,))
    db.run(f"DELETE FROM {db.audit} WHERE position > ?", (position - 3,))

    code, out = verify(capsys, url, checkpoints)

    assert code == 1
    assert first_bad(out) == position - 2
    assert "truncation" in out
    assert "AUDIT_CHAIN_DISAGREES" in rebuild_refused(capsys, url)


@pytest.mark.parametrize("chained", [False, True], ids=["unaudited", "with-audit-row"])
def test_an_appended_forged_deposit_has_no_seal(trial, capsys, chained):
    url, db, checkpoints, _ = trial
    oid, topic, state = db.run(
        f"SELECT originator_id, topic, state FROM {db.events} "
        f"WHERE {db.pos} = 2")[0]
    assert b"1000" in bytes(state)  # the deposit
    top = db.run(f"SELECT MAX(originator_version) FROM {db.events} WHERE originator_id = ?",
                 (oid,))[0][0]
    db.run(f"INSERT INTO {db.events} (originator_id, originator_version, topic, state) "
           "VALUES (?, ?, ?, ?)", (oid, top + 1, topic, bytes(state).replace(b"1000",
                                                                               b"1000000")))
    forged = db.head()
    if chained:  # the forger's audit row, chained by the next run as the issue found
        assert main(["projections", "run", "audit", "--once", "--database", url]) == 0

    code, out = verify(capsys, url, checkpoints)

    assert code == 1
    assert first_bad(out) == forged
    assert "has no seal" in out
    assert "AUDIT_CHAIN_DISAGREES" in rebuild_refused(capsys, url)


def test_an_edited_event_is_named(trial, capsys):
    url, db, checkpoints, _ = trial
    state = db.state(2)
    db.run(f"UPDATE {db.events} SET state = ? WHERE {db.pos} = 2",
           (state.replace(b"1000", b"9000", 1),))

    code, out = verify(capsys, url, checkpoints)

    assert code == 1
    assert first_bad(out) == 2
    assert "does not match its seal" in out
    assert "AUDIT_CHAIN_DISAGREES" in rebuild_refused(capsys, url)


def test_reordered_events_are_named(trial, capsys):
    url, db, checkpoints, _ = trial
    db.run(f"UPDATE {db.events} SET {db.pos} = -1 WHERE {db.pos} = 6")
    db.run(f"UPDATE {db.events} SET {db.pos} = 6 WHERE {db.pos} = 7")
    db.run(f"UPDATE {db.events} SET {db.pos} = 7 WHERE {db.pos} = -1")

    code, out = verify(capsys, url, checkpoints)

    assert code == 1
    assert first_bad(out) == 6
    assert "AUDIT_CHAIN_DISAGREES" in rebuild_refused(capsys, url)


def test_an_event_deleted_in_the_middle_with_its_audit_row_and_seal_is_named(trial, capsys):
    url, db, checkpoints, _ = trial
    oid, version = db.run(f"SELECT originator_id, originator_version FROM {db.events} "
                          f"WHERE {db.pos} = 8")[0]
    db.run(f"DELETE FROM {db.events} WHERE {db.pos} = 8")
    db.run(f"DELETE FROM {db.audit} WHERE position = 8")
    db.run(f"DELETE FROM {db.seals} WHERE originator_id = ? AND originator_version = ?",
           (oid, version))

    code, out = verify(capsys, url, checkpoints)

    assert code == 1
    assert first_bad(out) == 8
    assert "AUDIT_CHAIN_DISAGREES" in rebuild_refused(capsys, url)


def test_an_edit_re_chained_by_force_is_still_caught_by_the_checkpoint(trial, capsys):
    url, db, checkpoints, position = trial
    db.run(f"DELETE FROM {db.seals}")  # the forger hides the seals as well
    db.run(f"UPDATE {db.events} SET state = ? WHERE {db.pos} = 2",
           (db.state(2).replace(b"1000", b"9000", 1),))
    assert main(["projections", "rebuild", "audit", "--force", "--reason", "incident 7",
                 "--actor", "mallory", "--database", url]) == 0

    code, out = verify(capsys, url, checkpoints)

    assert code == 1
    assert f"the chain at position {position} differs from the checkpoint" in out
    assert "their seals are gone" in out
    capsys.readouterr()
    assert main(["audit", "export", "--database", url]) == 0
    rechains = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                if '"AuditRechain"' in line]
    assert [(r["actor"], r["data"]["reason"], r["data"]["position"]) for r in rechains] == [
        ("operator:mallory", "incident 7", 2)]


def test_a_forced_rebuild_needs_a_reason(trial, capsys):
    url, *_ = trial

    assert main(["projections", "rebuild", "audit", "--force", "--database", url]) == 2
    assert "REASON_REQUIRED" in capsys.readouterr().err


def test_events_stored_before_sealing_began_are_reported_not_failed(tmp_path, capsys):
    from application.trading import Trading

    path = tmp_path / "older.sqlite"
    older = Trading(clock=SteppingClock(T0), ids=SequentialIds("older"),  # no seals
                    env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                         "SQLITE_DBNAME": str(path)})
    try:
        a_day_of_trading(older)
        unsealed = older.recorder.max_notification_id()
    finally:
        older.close()
    url = f"sqlite:///{path}"
    app = open_trading(url, clock=SteppingClock(T0), ids=SequentialIds("newer"))
    try:
        backtest(app, candle_rows(saw_levels(1)), seed="newer")
    finally:
        app.close()
    assert main(["projections", "run", "--once", "--database", url]) == 0
    capsys.readouterr()

    assert main(["audit", "verify", "--database", url]) == 0
    assert f"{unsealed} written before sealing began" in capsys.readouterr().out
