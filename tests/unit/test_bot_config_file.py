"""A bot configuration file giving a key twice is refused, naming the key and the file."""

from __future__ import annotations

import pytest

from api.commands.bot_config import load_bot_config
from api.commands.common import CommandError


def test_a_key_given_twice_is_refused_with_its_name_and_the_file(tmp_path) -> None:
    path = tmp_path / "bot.json"
    path.write_text('{"pair": "BTC/USDT", "take_profit_pct": "1.5", "max_safety_orders": 3,'
                    ' "take_profit_pct": "9"}', encoding="utf-8")

    with pytest.raises(CommandError) as refused:
        load_bot_config(str(path))

    assert refused.value.code == "CONFIG_DUPLICATE_KEY"
    assert "'take_profit_pct'" in refused.value.message
    assert str(path) in refused.value.message


def test_a_key_given_twice_in_a_nested_object_is_refused_too(tmp_path) -> None:
    path = tmp_path / "bot.json"
    path.write_text('{"pair": "BTC/USDT", "x": {"a": 1, "a": 2}}', encoding="utf-8")

    with pytest.raises(CommandError) as refused:
        load_bot_config(str(path))

    assert refused.value.code == "CONFIG_DUPLICATE_KEY"
    assert "'a'" in refused.value.message
