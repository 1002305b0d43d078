"""The README's GraphQL examples work as printed: each shell example of its *Examples*
section is run with bash, through the README's own ``gql`` helper (curl), against a real
``tradetape serve --demo``, as the demo user. Only the address changes (a free port)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import login

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = pytest.mark.timeout(120)


def examples() -> tuple[str, list[str]]:
    """The ``gql`` helper and every ``gql …`` example, in the README's order."""
    text = README.read_text()
    section = text[text.index("### Examples"):text.index("### Settings")]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    helper = next(b for b in blocks if b.startswith("gql() {"))
    return helper, [b for b in blocks if b.startswith("gql '")]


def test_every_readme_example_answers_without_errors(launch):
    helper, runs = examples()
    assert len(runs) >= 4, "the README's examples were not found"
    assert shutil.which("curl"), "the README's gql helper needs curl"
    server = launch(demo=True)
    email, password = re.fullmatch(r"demo login: (\S+) password: (\S+)",
                                   server.login_line()).groups()
    env = {"PATH": "/usr/bin:/bin", "TOKEN": login(server, email, password)}
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
