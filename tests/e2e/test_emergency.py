"""``tradetape emergency stop`` run beside a live server (another process, the same database)
halts the server's trading until ``tradetape emergency resume``."""

from __future__ import annotations

import json
import subprocess
import time

from application.bootstrap import open_trading
from tests.e2e.conftest import (
    BOT,
    TRADETAPE,
    create_bot,
    new_user,
    server_env,
    start_bot,
    wait_for,
)

STATUS = "{ systemStatus { halted reason } }"


def tradetape(*args: str) -> str:
    done = subprocess.run([str(TRADETAPE), *args], capture_output=True, text=True,
                          env=server_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def engine_events_after(url: str, position: int) -> list[int]:
    trading = open_trading(url)
    try:
        notes = trading.recorder.select_notifications(start=position, limit=100_000,
                                                      inclusive_of_start=False)
        return [n.id for n in notes if json.loads(n.state)["actor"] == "engine"]
    finally:
        trading.close()


def head(url: str) -> int:
    trading = open_trading(url)
    try:
        return trading.recorder.max_notification_id() or 0
    finally:
        trading.close()


def test_a_stop_from_the_command_line_halts_a_running_servers_trading(launch):
    server = launch()
    url = server.database_url
    token = new_user(server, "trader@example.com")
    bot_id = create_bot(server, token)
    start_bot(server, token, bot_id)
    wait_for("the bot's first deal", lambda: server.gql(BOT, {"id": bot_id}, token)[
        "bot"]["dealsOpened"] >= 1)

    out = tradetape("emergency", "stop", "--reason", "venue down", "--actor", "ana",
                    "--database", url)
    assert out.strip() == "trading halted by operator:ana: venue down"
    assert server.gql(STATUS)["systemStatus"] == {"halted": True, "reason": "venue down"}
    time.sleep(0.5)  # a step already under way when the stop was recorded may finish
    halted_at = head(url)
    time.sleep(2.0)  # 100 market minutes at this speed
    assert engine_events_after(url, halted_at) == []

    tradetape("emergency", "resume", "--actor", "ana", "--database", url)
    wait_for("trading again", lambda: engine_events_after(url, halted_at))
    assert server.gql(STATUS)["systemStatus"]["halted"] is False
