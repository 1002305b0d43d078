"""A command loads what it needs and nothing more: the numerical and web stacks cost tenths
of a second to import, and a user waits for them at every command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from api.cli import build_parser
build_parser({only!r}).parse_args({argv!r})
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in
      ('numpy', 'pyarrow', 'fastapi', 'strawberry', 'matplotlib', 'ccxt', 'api'))))
"""


def loaded_after_parsing(argv: list[str]) -> set[str]:
    only = argv[0]
    out = subprocess.run([sys.executable, "-c", PROBE.format(only=only, argv=argv)],
                         capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("argv", [
    ["dca-plan", "--config", "bot.json", "--price", "100"],
    ["backtest", "--candles", "c.csv", "--config", "bot.json"],
    ["compare", "--candles", "c.csv", "--config", "a.json", "b.json"],
    ["candles", "fetch", "--exchange", "binance", "--pair", "BTC/USDT", "--from", "2025-11-01",
     "--out", "c.csv"],
])
def test_parsing_a_command_loads_only_its_own_module_and_no_heavy_library(argv):
    loaded = loaded_after_parsing(argv)
    commands = {m for m in loaded if m.startswith("api.commands.")}
    own = {f"api.commands.{argv[0].replace('-', '_')}", "api.commands.common"}
    shared = {"api.commands.backtest"} if argv[0] == "compare" else set()  # its options
    assert commands <= own | shared
    assert not {m for m in loaded if not m.startswith("api")}
