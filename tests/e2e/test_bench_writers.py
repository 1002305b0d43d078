"""``scripts/bench_writers.py`` beside a real ``tradetape serve`` on one PostgreSQL database,
as ``scripts/bench_api.py`` runs them: the server leases every running bot it finds free
and trades it on its market, so the writers must hold their bots' leases as an engine
worker does. Then their load is there for the whole run: they keep appending at the rate
asked for, the server trades none of their bots, and both stop cleanly; a user of that
server meanwhile gets her own answers, and sees her own change at once. (Without the
leases the writers die within seconds on ``CONCURRENT_MODIFICATION``.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ServerProcess, create_bot, new_user, server_env, start_bot

WRITERS = Path(__file__).resolve().parents[2] / "scripts" / "bench_writers.py"
LEASE = "1"  # seconds: the server's lease ticks (and the writers' renewals) come often
BOTS = "{ bots(first: 10) { edges { node { id status } } } }"


def progress(log: Path) -> list[tuple[float, int]]:
    return [
        (float(t), int(n))
        for line in log.read_text().splitlines()
        if line.startswith("progress ")
        for _, t, n in [line.split()]
    ]


def test_the_writers_keep_their_rate_and_their_bots_beside_a_server_that_leases_bots(
    postgres_url, tmp_path
):
    server = ServerProcess(postgres_url, tmp_path, env={"TRADETAPE_LEASE_SECONDS": LEASE})
    server.start()
    try:
        alice = new_user(server, "alice@example.com")
        bot_id = create_bot(server, alice)
        _writers_beside(server, postgres_url, tmp_path / "writers.log", alice, bot_id)
        server.stop()  # exit 0, no error logged: nothing of the writers' it tried to write
    finally:
        server.kill()  # (only if an assertion stopped the test first)


def _writers_beside(
    server: ServerProcess, postgres_url: str, log: Path, alice: str, bot_id: str
) -> None:
    command = [sys.executable, str(WRITERS), "--database", postgres_url, "--rate", "200"]
    with log.open("wb") as out:
        writers = subprocess.Popen(
            [*command, "--bots", "6"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=server_env(TRADETAPE_LEASE_SECONDS=LEASE),
            cwd=log.parent,  # the server's: its master key file is there
        )
    try:
        deadline = time.monotonic() + 90
        # several lease times: the server ticks (and would take free bots) meanwhile
        while len(seen := progress(log)) < 6 and writers.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert writers.poll() is None, log.read_text()  # still appending
        (t0, n0), (t1, n1) = seen[1], seen[-1]
        assert (n1 - n0) / (t1 - t0) > 150, seen  # about the 200 events/s asked for
        leases = server.health()["leases"]
        assert leases["bots"] == 0 and leases["last_error"] is None, leases
        # alice's answers while others trade: hers, and her own change seen at once
        created = [{"node": {"id": bot_id, "status": "CREATED"}}]
        assert server.gql(BOTS, token=alice)["bots"]["edges"] == created
        assert server.gql(BOTS, token=alice)["bots"]["edges"] == created
        start_bot(server, alice, bot_id)
        running = [{"node": {"id": bot_id, "status": "RUNNING"}}]
        assert server.gql(BOTS, token=alice)["bots"]["edges"] == running
    finally:
        if writers.poll() is None:
            writers.send_signal(signal.SIGTERM)
        code = writers.wait(60)
    assert code == 0, log.read_text()
    assert [line for line in log.read_text().splitlines() if line.startswith("events ")]
