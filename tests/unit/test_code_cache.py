"""The dataclass code cache: classes defined from cached code behave exactly like classes
compiled afresh, a second run compiles nothing, and a file it cannot trust is ignored."""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import subprocess
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest

from api.code_cache import DataclassCodeCache


def define():
    @dataclasses.dataclass(frozen=True)
    class Fill:
        price: str
        amount: int = 1
        tags: tuple[str, ...] = dataclasses.field(default=())

    return Fill


def behaviour(cls) -> tuple:
    a, b = cls("30000.5", 2), cls("30000.5", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.price = "1"
    return (repr(a), a == b, hash(a) == hash(b), cls("1") == cls("1", 1, ()),
            [f.name for f in dataclasses.fields(cls)], dataclasses.asdict(a))


@pytest.fixture
def with_cache(monkeypatch):
    def use(cache: DataclassCodeCache) -> DataclassCodeCache:
        monkeypatch.setattr(dataclasses, "exec", cache.exec, raising=False)
        return cache

    return use


def test_a_class_from_cached_code_behaves_as_one_compiled_afresh(tmp_path, with_cache,
                                                                monkeypatch):
    plain = behaviour(define())
    path = tmp_path / "codes.marshal"
    first = with_cache(DataclassCodeCache(path))
    assert behaviour(define()) == plain
    assert first.compiled > 0
    first.save(explicit=True)

    second = with_cache(DataclassCodeCache(path))
    compiled = []
    real_compile = builtins.compile
    monkeypatch.setattr(builtins, "compile",
                        lambda *a, **k: compiled.append(a[0]) or real_compile(*a, **k))
    assert behaviour(define()) == plain
    assert second.compiled == 0 and compiled == []


def test_a_foreign_or_damaged_file_is_ignored_and_replaced(tmp_path, with_cache):
    path = tmp_path / "codes.marshal"
    for content in (b"", b"\x00\x01\x02\x03garbage", MAGIC_NUMBER + b"\xff\xfe"):
        path.write_bytes(content)
        cache = with_cache(DataclassCodeCache(path))
        assert cache.codes == {}
        assert behaviour(define())[1] is True
        cache.save(explicit=True)
        assert path.read_bytes().startswith(MAGIC_NUMBER)
        assert DataclassCodeCache(path).codes.keys() == cache.codes.keys()


def test_nothing_is_written_where_python_may_not_write_bytecode(tmp_path, with_cache,
                                                                 monkeypatch):
    path = tmp_path / "codes.marshal"
    cache = with_cache(DataclassCodeCache(path))
    define()
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache.save()
    assert not path.exists()
    cache.save(explicit=True)
    assert path.exists()


def test_the_command_line_runs_with_the_cache_and_with_it_switched_off(tmp_path):
    config = Path(__file__).resolve().parents[2] / "api" / "examples" / "dca_bot.json"
    outputs = []
    for setting in ("on", "off"):
        out = subprocess.run(
            [sys.executable, "-c", "from api.cli import entry; entry()", "dca-plan",
             "--config", str(config), "--price", "30000", "--json"],
            capture_output=True, text=True, check=False,
            env={**os.environ, "TRADETAPE_CODE_CACHE": setting})
        assert out.returncode == 0, out.stderr
        outputs.append(json.loads(out.stdout))
    assert outputs[0] == outputs[1]
