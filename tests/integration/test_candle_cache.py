"""A candle file backtested again is read from its parsed copy (keyed by the SHA-256 of its
bytes): the same candles and the same stored events as a parse, a copy that is not the
file's own is ignored, a refused file is refused again with its line and kept nowhere, and
``TRADETAPE_CANDLE_CACHE=off`` keeps nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.marketdata import candle_cache
from adapters.marketdata.candle_cache import cache_directory, parse_cached
from adapters.marketdata.candle_file import read_candle_file
from adapters.marketdata.csv_candles import CandleDataError, parse_candle_file
from adapters.marketdata.walk import write_walk_csv
from api.cli import main
from tests.integration.test_engine_vs_reference import walks
from tests.integration.test_exits_vs_reference import STEPPED

ROWS = 30_000  # about 1.7 MB: above the size from which a file is kept


@pytest.fixture(scope="module")
def walk_csv(tmp_path_factory) -> Path:
    return write_walk_csv(tmp_path_factory.mktemp("walk") / "walk.csv", ROWS, seed=7)


def cached_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.arrow")) if directory.exists() else []


def assert_same_candles(a, b) -> None:
    assert (a.source, a.sha256, len(a), a.interval_ms, a.gaps) == (
        b.source,
        b.sha256,
        len(b),
        b.interval_ms,
        b.gaps,
    )
    for name in ("timestamps", "open", "high", "low", "close", "volume"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype and np.array_equal(left, right), name
        assert not right.flags.writeable
    for i in {0, len(a) // 2, min(12_345, len(a) - 1), len(a) - 1, -1}:
        assert a.exact(i) == b.exact(i)
        assert [str(x) for x in a.exact(i)] == [str(x) for x in b.exact(i)]
    first, last = int(a.timestamps[len(a) // 3]), int(a.timestamps[-1])
    part_a, part_b = (c.between(first, last) for c in (a, b))
    assert [part_a.exact(i) for i in range(len(part_a))] == [
        part_b.exact(i) for i in range(len(part_b))
    ]


def test_a_file_parsed_once_is_read_back_from_its_copy_as_the_same_candles(
    walk_csv, tmp_path, monkeypatch
):
    parsed = parse_candle_file(read_candle_file(walk_csv))
    first = parse_cached(read_candle_file(walk_csv), tmp_path)
    assert [p.name for p in cached_files(tmp_path)] == [f"{parsed.sha256}-v1.arrow"]

    def no_parse(file):
        raise AssertionError("parsed again")

    monkeypatch.setattr(candle_cache, "parse_candle_file", no_parse)
    again = parse_cached(read_candle_file(walk_csv), tmp_path)
    assert_same_candles(parsed, first)
    assert_same_candles(parsed, again)


def test_a_file_read_by_its_ends_finds_its_copy_and_gives_the_same_candles(walk_csv, tmp_path):
    """A command reads a large file by its ends (hash, first and last bytes): the same hash
    as the whole file's, and the same candles, parsed (first run) or from the copy."""
    whole = read_candle_file(walk_csv)
    ends = read_candle_file(walk_csv, ends_only=True)
    assert ends.sha256 == whole.sha256 == hashlib.sha256(walk_csv.read_bytes()).hexdigest()
    assert (ends.size, ends.tail) == (len(whole.data), whole.data[-4096:])
    assert whole.data.startswith(ends.head) and len(ends.head) >= 2**20
    parsed = parse_candle_file(whole)
    assert_same_candles(parsed, parse_cached(ends, tmp_path))
    assert len(cached_files(tmp_path)) == 1
    assert_same_candles(parsed, parse_cached(read_candle_file(walk_csv, ends_only=True),
                                             tmp_path))


def test_a_file_changed_after_its_ends_were_read_is_parsed_as_it_is_then(walk_csv, tmp_path):
    """Hashed by its ends, then changed before the parse it needs: the candles parsed, their
    hash (the one a run records) and the copy kept are all of the bytes parsed."""
    path = tmp_path / "walk.csv"
    shutil.copy(walk_csv, path)
    ends = read_candle_file(path, ends_only=True)
    write_walk_csv(path, ROWS, seed=8)
    changed = read_candle_file(path)
    assert changed.sha256 != ends.sha256
    candles = parse_cached(ends, tmp_path / "cache")
    assert_same_candles(parse_candle_file(changed), candles)
    assert [p.name for p in cached_files(tmp_path / "cache")] == [f"{changed.sha256}-v1.arrow"]


def test_small_files_and_a_cache_turned_off_are_read_whole(walk_csv, tmp_path, monkeypatch):
    small = tmp_path / "small.csv"
    small.write_bytes(walk_csv.read_bytes()[:200_000].rsplit(b"\n", 1)[0] + b"\n")
    assert read_candle_file(small, ends_only=True).data == small.read_bytes()
    monkeypatch.setenv("TRADETAPE_CANDLE_CACHE", " OFF ")
    from adapters.marketdata.candle_file import caching_off

    assert caching_off() and cache_directory() is None


def backtest_output(capsys, candles: Path, config: Path, store: Path) -> tuple[dict, bytes]:
    """The JSON a user reads (deals included) and every stored event's bytes."""
    import sqlite3

    code = main(
        [
            "backtest",
            "--candles",
            str(candles),
            "--config",
            str(config),
            "--json",
            "--deals",
            "--no-progress",
            "--seed",
            "cache",
            "--store",
            f"sqlite:///{store}",
        ]
    )
    assert code == 0
    output = json.loads(capsys.readouterr().out)
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT originator_id, originator_version, topic, state "
            "FROM stored_events ORDER BY rowid"
        ).fetchall()
    return output, repr(rows).encode()


def test_a_backtest_from_the_copy_stores_the_events_of_one_from_the_file(
    walk_csv, tmp_path, capsys, monkeypatch
):
    config = tmp_path / "bot.json"
    config.write_text(
        json.dumps(
            {
                **STEPPED,
                "stop_loss_pct": "2",
                "trailing_stop_loss": True,
                "stop_loss_activation_pct": "0.3",
            }
        )
    )
    cache = tmp_path / "cache"
    monkeypatch.setenv("TRADETAPE_CANDLE_CACHE", "off")
    plain = backtest_output(capsys, walk_csv, config, tmp_path / "plain.sqlite")
    assert not cached_files(cache)
    monkeypatch.setenv("TRADETAPE_CANDLE_CACHE", str(cache))
    kept = backtest_output(capsys, walk_csv, config, tmp_path / "kept.sqlite")
    assert len(cached_files(cache)) == 1
    from_copy = backtest_output(capsys, walk_csv, config, tmp_path / "copy.sqlite")
    assert plain[0]["deals_closed"] > 0 and plain[0]["events"] > 100
    for output in (kept, from_copy):
        assert {**output[0], "run_id": None} == {**plain[0], "run_id": None}
        assert output[1] == plain[1]


def test_a_copy_that_is_not_the_files_own_is_ignored(walk_csv, tmp_path):
    other = write_walk_csv(tmp_path / "other.csv", ROWS, seed=8)
    parse_cached(read_candle_file(other), tmp_path)
    (kept,) = cached_files(tmp_path)
    file = read_candle_file(walk_csv)
    own_name = tmp_path / f"{file.sha256}-v1.arrow"
    shutil.copy(kept, own_name)  # another file's candles under this file's name
    assert_same_candles(parse_candle_file(file), parse_cached(file, tmp_path))
    own_name.write_bytes(kept.read_bytes()[: kept.stat().st_size // 2])  # cut short
    assert_same_candles(parse_candle_file(file), parse_cached(file, tmp_path))


def test_a_refused_file_is_refused_again_with_its_line_and_kept_nowhere(walk_csv, tmp_path):
    lines = walk_csv.read_bytes().split(b"\n")
    t, o, h, low, c, v = lines[5_000].split(b",")
    lines[5_000] = b",".join([t, o, low, h, c, v]) if h != low else lines[5_000] + b",9"
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\n".join(lines))
    for _ in range(2):
        with pytest.raises(CandleDataError) as refused:
            parse_cached(read_candle_file(broken), tmp_path / "cache")
        assert refused.value.line == 5_001
    assert not cached_files(tmp_path / "cache")


def test_the_cache_directory_is_chosen_by_the_environment(tmp_path):
    assert cache_directory({"TRADETAPE_CANDLE_CACHE": "off"}) is None
    assert cache_directory({"TRADETAPE_CANDLE_CACHE": str(tmp_path)}) == tmp_path
    assert cache_directory({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "tradetape" / (
        "candles"
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=walks(), line_end=st.sampled_from(["\n", "\r\n"]), trailing=st.booleans())
def test_any_file_read_back_from_its_copy_is_the_parsed_file(
    rows, line_end, trailing, tmp_path, monkeypatch
):
    """Generated walks (every size kept here): the copy gives what the parse gave."""
    monkeypatch.setattr(candle_cache, "SMALLEST_CACHED_BYTES", 0)
    body = line_end.join(f"{t},{o},{h},{lo},{c},1" for t, o, h, lo, c in rows)
    path = tmp_path / f"walk-{len(rows)}.csv"
    path.write_bytes(
        (
            "timestamp_ms,open,high,low,close,volume"
            + line_end
            + body
            + (line_end if trailing else "")
        ).encode()
    )
    parsed = parse_candle_file(read_candle_file(path))
    parse_cached(read_candle_file(path), tmp_path / "cache")
    assert_same_candles(parsed, parse_cached(read_candle_file(path), tmp_path / "cache"))
