"""Reading a bot configuration file (JSON; numbers as strings or integers, never floats).

Whatever the file holds, the answer is a configuration or one named error: a file that is
not UTF-8 text, too large, nested too deep, or that gives a key twice (JSON parsers keep
the last one silently: the bot would not trade what its author read) is refused."""

from __future__ import annotations

import json
from pathlib import Path

from api.commands.common import CommandError
from domain.dca import DcaConfig
from domain.signals import KeyGivenTwice, unique_keys

MAX_CONFIG_BYTES = 1024 * 1024  # a configuration is a dozen keys: a few hundred bytes


def load_bot_config(path: str) -> DcaConfig:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise CommandError("CONFIG_NOT_OBJECT", f"{path} must hold one JSON object")
    # A float is refused by DcaConfig with an error that names the field.
    return DcaConfig.from_mapping(data)


def _read_json(path: str) -> object:
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CommandError("CONFIG_NOT_TEXT", f"{path} is not UTF-8 text (byte "
                           f"{error.start}): a configuration is a JSON file") from None
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except KeyGivenTwice as twice:  # (its text: the key's repr)
        raise CommandError("CONFIG_DUPLICATE_KEY", f"{path} gives {twice} twice: "
                           "say each setting once") from None
    except json.JSONDecodeError as error:
        raise CommandError(
            "CONFIG_NOT_JSON", f"{path} line {error.lineno}: {error.msg}"
        ) from None
    except RecursionError:
        raise CommandError("CONFIG_TOO_DEEP", f"{path} nests arrays or objects too deep "
                           "for a configuration (one flat object)") from None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise CommandError("CONFIG_NOT_JSON", f"{path}: {str(error).split(';')[0]}"
                           ) from None


def _read_bytes(path: str) -> bytes:
    try:
        with Path(path).open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise CommandError("CONFIG_UNREADABLE", f"cannot read {path}: {error.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise CommandError("CONFIG_TOO_LARGE", f"{path} is larger than "
                           f"{MAX_CONFIG_BYTES // 1024 // 1024} MiB: not a bot configuration")
    return raw
