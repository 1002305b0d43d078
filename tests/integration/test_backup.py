"""Backups: a store backed up at one position and restored into an empty store of either
kind holds the same log (positions, ids, versions, topics, stored bytes), the same data
keys and email index (personal data still opens), and after the rebuild every read model
equals the source's at the backup's position, with ``audit verify`` passing."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SequentialIds, SettableClock, SystemClock
from api.cli import main as cli
from api.commands.backup_checks import after_restore
from application.backup import create, restore, verify, witness_rows
from application.bootstrap import open_backup_store, open_identity, open_trading
from domain.accounts import ExchangeAccount
from domain.backup import BackupError
from domain.errors import ConcurrencyConflictError
from projections.registry import PROJECTIONS
from tests.backup_stubs import log_rows, views_at, views_of
from tests.conftest import POSTGRES_URL, require_postgres
from tests.fakes import CountingSecrets, RecordingMailer
from tests.integration.conftest import T0
from tests.projection_stubs import (
    a_day_of_trading,
    backtest,
    candle_rows,
    catch_up,
    saw_levels,
    view_store,
)

SECRET_KEY = "backup-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "Correct-Horse-9"


@pytest.fixture(autouse=True)
def the_sources_keys(monkeypatch) -> None:
    """A restore needs the keys the source was written with (master key, server secret,
    audit key: never in a backup); here both sides have them from the environment."""
    for name in ("TRADETAPE_SECRET_KEY", "TRADETAPE_MASTER_KEY", "TRADETAPE_AUDIT_KEY"):
        monkeypatch.setenv(name, f"{name.lower()}-for-the-backup-tests-0123456789abcdef")


@pytest.fixture
def new_store(tmp_path) -> Iterator[Callable[[str], str]]:
    """``new_store(kind)``: the URL of a fresh, empty SQLite file or PostgreSQL schema."""
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    schemas: list[str] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.sqlite'}"
        require_postgres()
        schemas.append(f"t_{uuid.uuid4().hex[:16]}")
        return f"{POSTGRES_URL}?schema={schemas[-1]}"

    yield make
    if schemas:
        env = parse_database_url(POSTGRES_URL).env
        with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def identity_on(url: str):
    return open_identity(url, clock=SettableClock(T0), ids=SequentialIds(f"id-{url}"),
                         secrets=CountingSecrets("backup"), mailer=RecordingMailer(),
                         secret_key=SECRET_KEY, bcrypt_rounds=4)


def fill(url: str) -> None:
    """Users with sealed personal data, a day of trading, a backtest; read models built."""
    identity = identity_on(url)
    try:
        for name in ("alice", "bob"):
            identity.register(f"{name}@example.com", PASSWORD, display_name=name.title(),
                              verified=True)
        app = identity.trading
        a_day_of_trading(app)
        backtest(app, candle_rows(saw_levels(3)), seed="before")
        store = view_store(url)
        catch_up(app, store)
        store.close()
    finally:
        identity.close()


def backup_of(url: str, out: Path):
    return create(open_backup_store(url), out, clock=SystemClock(), version="test")


@pytest.mark.parametrize(("source_kind", "target_kind"), [
    ("sqlite", "sqlite"), ("sqlite", "postgres"), ("postgres", "postgres"),
    ("postgres", "sqlite")])
def test_a_restored_store_is_the_source_at_the_backup_position(
        source_kind, target_kind, new_store, tmp_path):
    source, target = new_store(source_kind), new_store(target_kind)
    fill(source)
    made = backup_of(source, tmp_path / "b.tar.gz")
    position = made.manifest["position"]
    app = open_trading(source)  # the source moves on after the backup
    backtest(app, candle_rows(saw_levels(2)), seed="after")
    app.close()
    at_backup = [row for row in log_rows(source) if row[0] <= position]

    restored = restore(tmp_path / "b.tar.gz", open_backup_store(target))
    checks = after_restore(tmp_path / "b.tar.gz", target, restored.position)

    assert restored.position == position == at_backup[-1][0]
    assert log_rows(target) == at_backup
    assert checks.ok and checks.audit_intact and checks.audit_events == position
    assert checks.chain_compared > 0 and checks.chain_problem is None
    assert views_of(target) == views_at(source, position)
    assert sum(len(rows) for rows in views_of(target).values()) > 100
    identity = identity_on(target)  # the data keys and the email index came along
    try:
        alice = identity.find_user("alice@example.com")
        assert alice is not None and alice.display_name == "Alice"
        assert identity.login("bob@example.com", PASSWORD).access_token
    finally:
        identity.close()


def test_positions_keep_the_sources_holes_and_new_events_follow_the_last(
        new_store, tmp_path):
    source = new_store("postgres")
    first, second = open_trading(source), open_trading(source)
    try:
        account = first.open_account(owner_id="alice", exchange="binance", quote_asset="USDT")
        stale = second.load(account, ExchangeAccount)
        first.deposit(account, "USDT", Decimal("100"), actor="alice")
        stale.deposit(second.cause("alice"), "USDT", Decimal("5"))
        with pytest.raises(ConcurrencyConflictError):  # its notification id is a hole
            second.save_all(stale)
        first.deposit(account, "USDT", Decimal("7"), actor="alice")
    finally:
        first.close()
        second.close()
    ids = [row[0] for row in log_rows(source)]
    assert ids[-1] == len(ids) + 1  # one hole, made by the failed append

    made = backup_of(source, tmp_path / "holes.tar.gz")
    entry = next(t for t in made.manifest["tables"] if t["name"] == "trading_events")
    assert (entry["last_position"], entry["gaps"]) == (ids[-1], 1)
    for kind in ("sqlite", "postgres"):
        target = new_store(kind)
        restore(tmp_path / "holes.tar.gz", open_backup_store(target))
        assert [row[0] for row in log_rows(target)] == ids
        app = open_trading(target)
        try:
            app.open_account(owner_id="bob", exchange="binance", quote_asset="USDT")
            assert app.recorder.max_notification_id() == ids[-1] + 1
        finally:
            app.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_backup_taken_while_writers_run_is_the_log_at_one_position(kind, new_store, tmp_path):
    source = new_store(kind)
    fill(source)
    app, store = open_trading(source), view_store(source)
    account = app.open_account(owner_id="carol", exchange="binance", quote_asset="USDT")
    stop, wrote = threading.Event(), []

    def trade() -> None:  # appends and audits all along, as a running server does
        while not stop.is_set():
            app.deposit(account, "USDT", Decimal("1"), actor="carol")
            catch_up(app, store, [PROJECTIONS["audit"]])
            wrote.append(1)

    def slowly(table: str, rows: int) -> None:  # the log is read; let writers go on
        if table == "trading_events":
            count = len(wrote)
            while len(wrote) < count + 5:
                stop.wait(0.01)

    writer = threading.Thread(target=trade)
    writer.start()
    try:
        made = create(open_backup_store(source), tmp_path / "live.tar.gz", clock=SystemClock(),
                      version="test", on_progress=slowly)
    finally:
        stop.set()
        writer.join()
        store.close()
        app.close()
    position = made.manifest["position"]
    backed_up = [row["notification_id"] for row in witness_rows(tmp_path / "live.tar.gz",
                                                                 "trading_events")]
    audited = [row["position"] for row in witness_rows(tmp_path / "live.tar.gz", "audit_log")]
    source_ids = [row[0] for row in log_rows(source)]
    assert source_ids[-1] > position  # the writers went on while the backup was read
    assert backed_up == [i for i in source_ids if i <= position]
    assert audited and audited[-1] <= position  # no audit row of an event it does not hold


# --- verify ---------------------------------------------------------------------------------


@pytest.fixture
def a_backup(new_store, tmp_path) -> Path:
    source = new_store("sqlite")
    fill(source)
    backup_of(source, tmp_path / "b.tar.gz")
    return tmp_path / "b.tar.gz"


def repack(path: Path, change: Callable[[str, bytes], bytes]) -> None:
    """The archive again with each member's bytes passed through ``change(name, data)``."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(info.name, tar.extractfile(info).read()) for info in tar.getmembers()]
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            changed = change(name, data)
            info = tarfile.TarInfo(name)
            info.size = len(changed)
            tar.addfile(info, io.BytesIO(changed))


def test_an_intact_backup_verifies(a_backup):
    checked = verify(a_backup)

    assert checked.ok, checked.problems
    assert checked.expected_sha256 == checked.manifest_sha256  # from b.tar.gz.sha256


def test_one_changed_byte_anywhere_in_the_file_fails_verification(a_backup):
    data = bytearray(a_backup.read_bytes())
    for at in (len(data) // 3, len(data) // 2, len(data) - 20):
        changed = bytearray(data)
        changed[at] ^= 0x01
        a_backup.write_bytes(bytes(changed))
        try:
            problems = verify(a_backup).problems
        except BackupError as error:
            problems = [error.code]
        assert problems, f"a changed byte at {at} of {len(data)} went unnoticed"


def test_a_changed_stored_event_is_named_by_its_file(a_backup):
    def edit(name: str, data: bytes) -> bytes:
        if name != "tables/trading_events.jsonl":
            return data
        lines = data.splitlines(keepends=True)
        line = bytearray(lines[3])
        at = line.rindex(b',"') + 5  # inside the base64 of the stored state
        line[at] = ord("A") if line[at] != ord("A") else ord("B")
        lines[3] = bytes(line)
        return b"".join(lines)

    repack(a_backup, edit)
    problems = verify(a_backup).problems

    assert any(p.startswith("tables/trading_events.jsonl: sha256") for p in problems), problems


def test_a_changed_manifest_fails_against_the_hash_printed_beside_it(a_backup):
    def edit(name: str, data: bytes) -> bytes:
        return data.replace(b'"rows": 2,', b'"rows": 3,') if name == "manifest.json" else data

    repack(a_backup, edit)
    problems = verify(a_backup).problems

    assert any(p.startswith("manifest: sha256") for p in problems), problems
    assert verify(a_backup, "0" * 64).problems  # the operator's own record of the hash


def test_restore_refuses_a_store_that_is_not_empty_and_changes_nothing(a_backup, new_store):
    target = new_store("postgres")
    app = open_trading(target)
    app.open_account(owner_id="dora", exchange="binance", quote_asset="USDT")
    before = log_rows(target)
    app.close()

    with pytest.raises(BackupError) as refused:
        restore(a_backup, open_backup_store(target))

    assert refused.value.code == "TARGET_NOT_EMPTY"
    assert "trading_events has 1 rows" in refused.value.message
    assert log_rows(target) == before


def test_a_backup_that_fails_verification_writes_nothing(a_backup, new_store):
    repack(a_backup, lambda name, data: data[:-10] + b"0000000000" if name.endswith(
        "user_emails.jsonl") else data)
    target = new_store("sqlite")

    with pytest.raises(BackupError) as refused:
        restore(a_backup, open_backup_store(target))

    assert refused.value.code == "BACKUP_CORRUPT"
    assert log_rows(target) == []


# --- the command line -----------------------------------------------------------------------


def test_backup_commands_create_verify_and_restore(new_store, tmp_path, capsys):
    source, target = new_store("sqlite"), new_store("postgres")
    fill(source)
    out = tmp_path / "cli.tar.gz"

    assert cli(["backup", "create", "--out", str(out), "--database", source]) == 0
    printed = capsys.readouterr().out
    digest = out.with_name("cli.tar.gz.sha256").read_text().split()[0]
    assert f"manifest sha256: {digest}" in printed
    assert cli(["backup", "create", "--out", str(out), "--database", source]) == 2
    assert "BACKUP_EXISTS" in capsys.readouterr().err
    out.with_name("cli.tar.gz.sha256").unlink()
    assert cli(["backup", "verify", str(out), "--manifest-sha256", digest]) == 0
    assert "intact" in capsys.readouterr().out
    assert cli(["backup", "verify", str(out), "--manifest-sha256", "ab" * 32]) == 1
    assert "NOT intact" in capsys.readouterr().err

    assert cli(["backup", "restore", str(out), "--database", target]) == 0
    said = capsys.readouterr().out
    assert "audit verify: intact" in said and "the same as the source's" in said
    assert cli(["backup", "restore", str(out), "--database", target]) == 2
    assert "TARGET_NOT_EMPTY" in capsys.readouterr().err


def test_a_memory_store_cannot_be_backed_up(tmp_path, capsys):
    assert cli(["backup", "create", "--out", str(tmp_path / "m.tar.gz"),
                "--database", "memory"]) == 2
    assert "BACKUP_MEMORY_STORE" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_mistyped_store_is_not_backed_up_as_an_empty_one(kind, new_store, tmp_path):
    url = new_store(kind)  # nothing there: no file, an empty schema

    with pytest.raises(BackupError) as refused:
        backup_of(url, tmp_path / "none.tar.gz")

    assert refused.value.code == "NOTHING_TO_BACK_UP"
    assert not (tmp_path / "none.tar.gz").exists()
    if kind == "sqlite":
        assert not Path(url.removeprefix("sqlite:///")).exists()


def test_cron_backups_go_into_a_folder_and_the_retention_is_applied(new_store, tmp_path,
                                                                     capsys):
    source = new_store("sqlite")
    fill(source)
    folder = tmp_path / "backups"
    folder.mkdir()
    old = ["tradetape-20200101T000000Z.tar.gz", "tradetape-20200101T120000Z.tar.gz"]
    for name in [*old, "notes.txt"]:
        (folder / name).write_text("x")

    assert cli(["backup", "create", "--out-dir", str(folder), "--retain", "--json",
                "--database", source]) == 0

    made = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in folder.iterdir())
    assert Path(made["file"]).name in names and "notes.txt" in names
    # the older of two backups of 2020-01-01 goes; the newer is its month's
    assert old[0] not in names and old[1] in names
    assert verify(Path(made["file"])).ok


def test_backup_verify_of_a_damaged_file_exits_1_saying_so(a_backup, capsys):
    data = bytearray(a_backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    a_backup.write_bytes(bytes(data))

    assert cli(["backup", "verify", str(a_backup)]) == 1
    assert "NOT intact" in capsys.readouterr().err


# --- columns and tables a newer version adds ------------------------------------------------

EXTRA = {  # what another version might add: a column on the log (and fill it)
    "sqlite": ["ALTER TABLE stored_events ADD COLUMN future_column TEXT",
               "UPDATE stored_events SET future_column = 'v' || rowid"],
    "postgres": ["ALTER TABLE {s}.trading_events ADD COLUMN future_column text",
                 "UPDATE {s}.trading_events SET future_column = 'v' || notification_id"],
}


def run_sql(url: str, statements: list[str]) -> list[tuple]:
    """Runs ``statements`` on the store; the last one's rows."""
    from application.settings import _connect_kwargs, parse_database_url

    database, rows = parse_database_url(url), []
    if database.kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(database.sqlite_path, isolation_level=None)
        try:
            for statement in statements:
                rows = conn.execute(statement).fetchall()
        finally:
            conn.close()
        return rows
    import psycopg

    schema = f'"{database.env["POSTGRES_SCHEMA"]}"'
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        for statement in statements:
            cursor = conn.execute(statement.format(s=schema))
            rows = cursor.fetchall() if cursor.description else []
    return rows


def extras(url: str) -> list[tuple]:
    """Each event's position with its recorded time (UTC), the added column, and its seal."""
    from datetime import datetime

    kind = "sqlite" if url.startswith("sqlite") else "postgres"
    rows = run_sql(url, [
        "SELECT e.rowid, e.recorded_at, e.future_column, s.seal FROM stored_events e JOIN "
        "event_seals s ON s.originator_version = e.originator_version AND "
        "replace(s.originator_id, '-', '') = replace(e.originator_id, '-', '') "
        "ORDER BY e.rowid" if kind == "sqlite" else
        "SELECT e.notification_id, e.recorded_at, e.future_column, s.seal FROM "
        "{s}.trading_events e JOIN {s}.event_seals s USING (originator_id, "
        "originator_version) ORDER BY e.notification_id"])
    return [(p, (datetime.fromisoformat(t) if isinstance(t, str) else t).astimezone(UTC),
             column, seal) for p, t, column, seal in rows]


def seals_hold(url: str) -> bool:
    """Every event of ``url`` checked against its seal with this process's audit key."""
    from adapters.event_store.sealing import check_seals
    from application.bootstrap import open_audit_key

    app = open_trading(url)
    try:
        report = check_seals(app.recorder, open_audit_key(url),
                             app.recorder.max_notification_id())
    finally:
        app.close()
    return report.intact and report.unsealed_before == 0 and report.checked > 0


@pytest.mark.parametrize(("source_kind", "target_kind"), [
    ("sqlite", "sqlite"), ("postgres", "postgres"), ("sqlite", "postgres"),
    ("postgres", "sqlite")])
def test_columns_and_side_tables_a_version_adds_are_carried_whatever_they_hold(
        source_kind, target_kind, new_store, tmp_path):
    source, target = new_store(source_kind), new_store(target_kind)
    app = open_trading(source)
    a_day_of_trading(app)
    app.close()
    run_sql(source, EXTRA[source_kind])
    backup_of(source, tmp_path / "x.tar.gz")
    app = open_trading(target)  # the target made by that same version
    app.close()
    run_sql(target, [s for s in EXTRA[target_kind] if s.startswith(("ALTER", "CREATE"))])

    restore(tmp_path / "x.tar.gz", open_backup_store(target))

    assert extras(target) == extras(source) != []  # recorded times and seals kept
    assert log_rows(target) == log_rows(source)
    assert seals_hold(target)


def test_a_target_without_a_column_the_backup_holds_is_refused_naming_it(new_store,
                                                                          tmp_path):
    source, target = new_store("sqlite"), new_store("sqlite")
    app = open_trading(source)
    a_day_of_trading(app)
    app.close()
    run_sql(source, EXTRA["sqlite"])
    backup_of(source, tmp_path / "x.tar.gz")

    with pytest.raises(BackupError) as refused:
        restore(tmp_path / "x.tar.gz", open_backup_store(target))

    assert refused.value.code == "BACKUP_INCOMPATIBLE"
    assert "future_column" in refused.value.message
    assert log_rows(target) == []
