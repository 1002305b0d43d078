"""Structured logs over a real server: with ``TRADETAPE_LOG_FORMAT=json`` every line on
stderr is one JSON object (time, level, logger, message), naming the request's id and,
once known, the caller; never a token, a password, a document or its variables. A setting
that is not a format is refused before the server starts."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime

import pytest

from tests.e2e.conftest import TRADETAPE, login, server_env

pytestmark = pytest.mark.timeout(120)
FUTURE = "{ portfolio(asOf: \"2999-01-01T00:00:00Z\") { realizedPnl } }"
SECRET_PAGE = ("query Secret($note: String) { bots(first: 0, after: $note) "
               "{ pageInfo { hasNextPage } } }")


def json_lines(stderr: str) -> list[dict]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    records = [json.loads(line) for line in lines]  # each line alone is one JSON object
    for record in records:
        assert isinstance(record, dict), record
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        datetime.fromisoformat(record["time"])
    return records


def by_request(records: list[dict], request_id: str) -> list[dict]:
    return [r for r in records if r.get("request_id") == request_id]


def test_json_log_lines_name_the_request_and_the_caller_and_no_secret(launch):
    server = launch(demo=True, env={"TRADETAPE_LOG_FORMAT": "json"})
    email, password = re.fullmatch(r"demo login: (\S+@\S+) password: (\S+)",
                                   server.login_line()).groups()
    token = login(server, email, password)
    user_id = server.gql("{ me { id } }", token=token)["me"]["id"]
    headers = {"Authorization": f"Bearer {token}"}

    def send(request_id: str, body: dict, bearer: dict) -> None:
        answer = server.client.post("/graphql", json=body,
                                    headers={**bearer, "X-Request-ID": request_id})
        assert answer.headers["x-request-id"] == request_id
        assert answer.json()["errors"][0]["extensions"]["code"]

    send("logs-forged", {"query": FUTURE}, {"Authorization": "Bearer forged-token-value"})
    send("logs-caller", {"query": FUTURE}, headers)
    send("logs-secret", {"query": SECRET_PAGE, "variables": {"note": password}}, headers)
    server.stop()

    records = json_lines(server.stderr)
    [forged] = by_request(records, "logs-forged")
    assert forged["level"] == "WARNING" and forged["logger"] == "tradetape.graphql"
    assert "user_id" not in forged  # nobody was authenticated
    [caller] = by_request(records, "logs-caller")
    assert caller["user_id"] == user_id
    assert "AS_OF_IN_FUTURE" in caller["message"]
    [secret] = by_request(records, "logs-secret")
    assert "INVALID_PAGE_SIZE" in secret["message"]
    for text in (password, token, "forged-token-value", "pageInfo", "hasNextPage"):
        assert text not in server.stderr


def test_an_unknown_log_format_is_refused_before_the_server_starts(tmp_path):
    done = subprocess.run(
        [str(TRADETAPE), "serve", "--port", "9", "--database",
         f"sqlite:///{tmp_path / 'never.sqlite'}"],
        env=server_env(TRADETAPE_LOG_FORMAT="yaml"), capture_output=True, text=True,
        timeout=60, cwd=tmp_path, check=False)
    assert done.returncode != 0
    assert "TRADETAPE_LOG_FORMAT" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "never.sqlite").exists()
