"""Reading a bot configuration file (JSON; numbers as strings or integers, never floats)."""

from __future__ import annotations

import json
from pathlib import Path

from api.commands.common import CommandError
from domain.dca import DcaConfig


def load_bot_config(path: str) -> DcaConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError("CONFIG_UNREADABLE", f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(
            "CONFIG_NOT_JSON", f"{path} line {error.lineno}: {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise CommandError("CONFIG_NOT_OBJECT", f"{path} must hold one JSON object")
    # A float is refused by DcaConfig with an error that names the field.
    return DcaConfig.from_mapping(data)
