"""The README's GraphQL examples work as printed: each shell example of its *Examples*
section is run with bash, through the README's own ``gql`` helper (curl), against a real
``tradetape serve --demo``, as the demo user (those marked ``TOKEN="$ADMIN_TOKEN"`` as an
administrator), with the local exchange simulator as the exchanges' sandbox. Only the
address changes (a free port)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import TRADETAPE, login, server_env
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = pytest.mark.timeout(120)


def examples() -> tuple[str, list[str]]:
    """The ``gql`` helper and every ``gql …`` example, in the README's order."""
    text = README.read_text()
    section = text[text.index("### Examples"):text.index("### Settings")]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    helper = next(b for b in blocks if b.startswith("gql() {"))
    return helper, [b for b in blocks if b.startswith(("gql '", "TOKEN=\"$ADMIN_TOKEN\" gql '"))]


def test_every_readme_example_answers_without_errors(launch):
    helper, runs = examples()
    assert len(runs) >= 4, "the README's examples were not found"
    assert shutil.which("curl"), "the README's gql helper needs curl"
    first_ms = int(BTC_USDT_CANDLES.read_text().splitlines()[1].split(",")[0])
    with running_simulator(speed=0, start_ms=first_ms + 86_400_000) as sim:  # a day later
        server = launch(demo=True, env={"TRADETAPE_SANDBOX_HOST": sim.url})
        _run_examples(server, helper, runs)


def _run_examples(server, helper: str, runs: list[str]) -> None:
    email, password = re.fullmatch(r"demo login: (\S+) password: (\S+)",
                                   server.login_line()).groups()
    admin = ("admin@tradetape.local", "Admin-pass-4242")
    subprocess.run([str(TRADETAPE), "users", "create", "--email", admin[0], "--password",
                    admin[1], "--role", "admin", "--verified", "--database",
                    server.database_url], env=server_env(), check=True, capture_output=True,
                   timeout=60)
    env = {"PATH": "/usr/bin:/bin", "TOKEN": login(server, email, password),
           "ADMIN_TOKEN": login(server, *admin)}
    helper = helper.replace("http://127.0.0.1:8000", server.base_url)
    root = README.parent
    for example in runs:
        done = subprocess.run(["bash", "-c", f"{helper}\n{example}"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, (example, done.stderr)
        answer = json.loads(done.stdout)
        assert "errors" not in answer, (example, answer)
        for field, value in answer["data"].items():
            assert value is not None, (example, field)
            assert not (isinstance(value, dict) and value.get("__typename", "").endswith(
                "Errors")), (example, value)
        created = answer["data"].get("createBot")
        if created:  # the examples after it use the bot's id, as the README says
            env["BOT_ID"] = created["id"]
        opened = answer["data"].get("openPosition")
        if opened:  # and the position's
            env["POSITION_ID"] = opened["id"]
