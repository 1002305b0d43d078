"""Candle CSV adapter: real shipped series, every data rule, exactness, generated walks."""

from __future__ import annotations

import csv
import hashlib
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.marketdata.csv_candles import (
    HEADER,
    CandleDataError,
    candles_from_rows,
    load_candles,
)
from adapters.marketdata.shipped import SHIPPED, shipped_series
from adapters.marketdata.walk import generate_walk, write_walk_csv
from domain.errors import DomainError, FloatMoneyError

HEADER_LINE = ",".join(HEADER)
MINUTE = 60_000


def write_csv(directory: Path, lines: list[str], name: str = "candles.csv") -> Path:
    path = directory / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def load_error(path: Path) -> CandleDataError:
    with pytest.raises(CandleDataError) as caught:
        load_candles(path)
    return caught.value


def text_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as file:
        return list(csv.reader(file))[1:]


# --- the shipped real series -----------------------------------------------------------------

# name, rows, interval, first and last candle (UTC ms): from adapters/marketdata/data/README.md
SHIPPED_FACTS = [
    ("binance_BTC_USDT-1m-2025-11.csv", 43_200, MINUTE, 1_761_955_200_000, 1_764_547_140_000),
    ("freqtrade_UNITTEST_BTC-1m.csv", 13_681, MINUTE, 1_509_836_520_000, 1_510_700_340_000),
    ("freqtrade_ETH_BTC-5m.csv", 5_760, 5 * MINUTE, 1_515_560_100_000, 1_517_287_800_000),
    ("freqtrade_XRP_ETH-1m.csv", 3_560, MINUTE, 1_570_752_000_000, 1_570_965_540_000),
]


def test_every_shipped_series_is_listed_and_has_its_facts_checked():
    assert sorted(SHIPPED) == sorted(name for name, *_ in SHIPPED_FACTS)
    assert shipped_series("freqtrade_ETH_BTC-5m") == shipped_series("freqtrade_ETH_BTC-5m.csv")
    with pytest.raises(LookupError, match=re.escape("binance_BTC_USDT-1m-2025-11.csv")):
        shipped_series("BTC_USDT-1d")


@pytest.mark.parametrize(("name", "rows", "interval", "first", "last"), SHIPPED_FACTS)
def test_shipped_series_load_with_the_documented_shape(name, rows, interval, first, last):
    path = shipped_series(name)
    candles = load_candles(path)
    assert len(candles) == rows
    assert candles.interval_ms == interval
    assert (int(candles.timestamps[0]), int(candles.timestamps[-1])) == (first, last)
    assert candles.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert candles.source == str(path)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_prices_read_back_exactly_as_written(name):
    path = shipped_series(name)
    candles = load_candles(path)
    rows = text_rows(path)
    for i in [0, 1, len(rows) // 2, len(rows) - 1, *range(7, len(rows), 1009)]:
        timestamp, *ohlc, c, volume = rows[i]
        assert candles.exact(i) == (*map(Decimal, ohlc), Decimal(c))
        assert candles.exact_close(i) == Decimal(c)
        assert int(candles.timestamps[i]) == int(timestamp)
        assert candles.close[i] == float(c)
        assert candles.volume[i] == float(volume)


def test_a_known_binance_candle_is_exact_to_the_cent():
    candles = load_candles(shipped_series("binance_BTC_USDT-1m-2025-11"))
    assert candles.exact(0) == (
        Decimal("109608.01"),
        Decimal("109621.62"),
        Decimal("109608"),
        Decimal("109616.35"),
    )
    assert candles.exact_close(-1) == Decimal("90360")
    assert candles.gaps == []


def test_unittest_btc_1m_has_538_gaps_missing_717_minutes():
    candles = load_candles(shipped_series("freqtrade_UNITTEST_BTC-1m"))
    gaps = candles.gaps
    assert len(gaps) == 538
    assert sum(missing for _, missing in gaps) == 717
    span_minutes = (int(candles.timestamps[-1]) - int(candles.timestamps[0])) // MINUTE + 1
    assert len(candles) + 717 == span_minutes
    index, missing = gaps[0]
    assert (index, missing) == (6, 6)
    assert candles.timestamps[index] - candles.timestamps[index - 1] == 7 * MINUTE


def test_zero_volume_candles_are_valid():
    candles = load_candles(shipped_series("freqtrade_XRP_ETH-1m"))
    assert int((candles.volume == 0).sum()) == 1_091


@pytest.mark.parametrize("ending", ["\n", "\n\n", "\r\n\r\n", "", "\n\n\n"])
def test_blank_lines_after_the_last_candle_are_no_candles(tmp_path, ending):
    path = tmp_path / "candles.csv"
    path.write_bytes(("\n".join(GOOD) + ending).encode())
    candles = load_candles(path)
    assert len(candles) == 3
    assert candles.exact(2) == tuple(Decimal(v) for v in ("101", "101.5", "100.5", "101"))


def test_blank_lines_after_the_last_candle_do_not_hide_a_bad_line_before_them(tmp_path):
    error = load_error(write_csv(tmp_path, [*with_line(4, "121000,101,1e5,100.5,101,2"), "", ""]))
    assert (error.line, error.rule) == (4, "unparsable_number")
    error = load_error(write_csv(tmp_path, [*GOOD[:2], "", GOOD[3], ""], "gap.csv"))
    assert (error.line, error.rule) == (3, "wrong_column_count")  # between candles: refused


def test_arrays_are_read_only_so_they_cannot_drift_from_the_exact_text(tmp_path):
    candles = load_candles(write_csv(tmp_path, [HEADER_LINE, "0,100,101,99,100,1"]))
    with pytest.raises(ValueError, match="read-only"):
        candles.close[0] = 5.0


# --- every rule, with its line ---------------------------------------------------------------

GOOD = [
    HEADER_LINE,
    "1000,100,101,99,100.5,3",
    "61000,100.5,102,100,101,0",
    "121000,101,101.5,100.5,101,2.25",
]


def with_line(line_no: int, text: str) -> list[str]:
    lines = list(GOOD)
    lines[line_no - 1] = text
    return lines


@pytest.mark.parametrize(
    ("lines", "line", "rule", "says"),
    [
        ([HEADER_LINE], 2, "empty_file", "no candles"),
        ([HEADER_LINE, "", ""], 2, "empty_file", "no candles"),
        (["time,open,high,low,close,volume", *GOOD[1:]], 1, "bad_header", "'time,open"),
        ([HEADER_LINE + ",trades", *GOOD[1:]], 1, "bad_header", "must be exactly"),
        (with_line(3, "61000,100.5,102,100,101"), 3, "wrong_column_count", "found 5"),
        (with_line(3, "61000,100.5,102,100,101,0,7"), 3, "wrong_column_count", "found 7"),
        (with_line(3, ""), 3, "wrong_column_count", "an empty line"),
        (with_line(4, "121000,101,abc,100.5,101,2"), 4, "unparsable_number", "high 'abc'"),
        (with_line(4, "121000,101,,100.5,101,2"), 4, "unparsable_number", "high ''"),
        (with_line(4, "121000,101,1e5,100.5,101,2"), 4, "unparsable_number", "'1e5'"),
        (with_line(4, "121000,101,nan,100.5,101,2"), 4, "unparsable_number", "'nan'"),
        (with_line(4, "121000,101, 102,100.5,101,2"), 4, "unparsable_number", "' 102'"),
        (with_line(4, '121000,"101",102,100.5,101,2'), 4, "unparsable_number", "open"),
        (with_line(4, "121000.5,101,102,100.5,101,2"), 4, "unparsable_number", "timestamp_ms"),
        (with_line(4, "9223372036854775808,101,102,100,101,2"), 4, "unparsable_number", "ms"),
        (with_line(4, "121000,101,102,100.5,101,x"), 4, "unparsable_number", "volume 'x'"),
        (with_line(3, "1000,100.5,102,100,101,0"), 3, "non_increasing_timestamp", "1000"),
        (with_line(3, "500,100.5,102,100,101,0"), 3, "non_increasing_timestamp", "500"),
        (with_line(2, "1000,100,101,0,100.5,3"), 2, "non_positive_price", "low 0 is"),
        (with_line(2, "1000,-100,101,99,100.5,3"), 2, "non_positive_price", "open -100"),
        (with_line(2, "1000,100,99.5,99,99,3"), 2, "high_below_open_close", "high 99.5 is below"),
        (with_line(2, "1000,99,99.5,99,100,3"), 2, "high_below_open_close", "below close 100"),
        (with_line(2, "1000,100,101,100.01,100.5,3"), 2, "low_above_open_close", "above open"),
        (with_line(2, "1000,100.5,101,100.01,100,3"), 2, "low_above_open_close", "above close"),
        (with_line(4, "121000,101,101.5,100.5,101,-2"), 4, "negative_volume", "volume -2"),
    ],
)
def test_each_rule_names_the_first_bad_line(tmp_path, lines, line, rule, says):
    error = load_error(write_csv(tmp_path, lines))
    assert (error.line, error.rule) == (line, rule)
    assert f"line {line}: " in error.message
    assert says in error.message
    assert error.message.endswith(f"(rule: {rule})")
    assert error.code == "BAD_CANDLE_DATA"
    assert isinstance(error, DomainError)


def test_the_message_reads_like_a_report(tmp_path):
    path = write_csv(tmp_path, with_line(3, "61000,100,99.5,99,99,1"))
    error = load_error(path)
    assert error.message == (
        f"{path} line 3: high 99.5 is below open 100 (rule: high_below_open_close)"
    )
    assert error.field == "high"


def test_a_zero_byte_file_is_empty(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_bytes(b"")
    error = load_error(path)
    assert (error.line, error.rule) == (1, "empty_file")


def test_the_earliest_problem_wins_whatever_its_kind(tmp_path):
    # line 3 breaks a price rule, line 5 cannot even be parsed: line 3 is reported
    lines = [*with_line(3, "61000,100.5,100,100,101,0"), "181000,1,x,1,1,1"]
    error = load_error(write_csv(tmp_path, lines))
    assert (error.line, error.rule) == (3, "high_below_open_close")
    # and the other way round
    lines = [*with_line(3, "61000,100.5,x,100,101,0"), "181000,2,1,1,1,1"]
    error = load_error(write_csv(tmp_path, lines))
    assert (error.line, error.rule) == (3, "unparsable_number")


@pytest.mark.parametrize(
    ("bad_line", "rule"),
    [("high_below", "high_below_open_close"), ("letters", "unparsable_number")],
)
def test_line_numbers_stay_right_deep_into_a_multi_megabyte_file(tmp_path, bad_line, rule):
    path = write_walk_csv(tmp_path / "walk.csv", 40_000, seed=3)
    lines = path.read_text().splitlines()
    target = 38_765  # 1-based line number, far past pyarrow's first block
    timestamp = lines[target - 1].split(",")[0]
    lines[target - 1] = {
        "high_below": f"{timestamp},100,99,98,99,1",
        "letters": f"{timestamp},100,1OO,98,99,1",
    }[bad_line]
    error = load_error(write_csv(tmp_path, lines, "broken.csv"))
    assert (error.line, error.rule) == (target, rule)


def test_nothing_is_returned_when_a_file_is_bad(tmp_path):
    path = write_csv(tmp_path, with_line(4, "121000,101,101.5,100.5,101,-2"))
    result = None
    with pytest.raises(CandleDataError):
        result = load_candles(path)
    assert result is None


def test_windows_line_endings_a_byte_order_mark_and_no_final_newline_are_fine(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(GOOD).encode())
    candles = load_candles(path)
    assert len(candles) == 3
    assert candles.exact(2) == tuple(Decimal(x) for x in ("101", "101.5", "100.5", "101"))


def test_a_negative_zero_volume_is_zero_not_negative(tmp_path):
    candles = load_candles(write_csv(tmp_path, [HEADER_LINE, "0,1,1,1,1,-0"]))
    assert len(candles) == 1


def test_a_negative_volume_too_small_for_a_float_is_still_negative(tmp_path):
    tiny_negative = "-0." + "0" * 400 + "1"  # reads as -0.0 in float64
    error = load_error(write_csv(tmp_path, [HEADER_LINE, f"0,1,1,1,1,{tiny_negative}"]))
    assert (error.line, error.rule) == (2, "negative_volume")


# --- exact means exact -----------------------------------------------------------------------

# The double nearest 0.1, cut to 34 digits: as a float it *is* 0.1, as a Decimal it is not.
NOT_QUITE_A_TENTH = "0.1000000000000000055511151231257827"


def test_exact_prices_never_go_through_float(tmp_path):
    assert float(NOT_QUITE_A_TENTH) == 0.1
    row = f"0,0.1,{NOT_QUITE_A_TENTH},0.1,{NOT_QUITE_A_TENTH},1"
    candles = load_candles(write_csv(tmp_path, [HEADER_LINE, row]))
    open_, high, low, close = candles.exact(0)
    assert high == close == Decimal(NOT_QUITE_A_TENTH) != Decimal("0.1")
    assert open_ == low == Decimal("0.1")
    assert candles.exact_close(0) == Decimal(NOT_QUITE_A_TENTH)


def test_a_rule_broken_below_float_precision_is_still_caught(tmp_path):
    # open and high both read as 100.0 in float64; exactly, high is below open
    row = "200000,100.00000000000000002,100.00000000000000001,99,100,1"
    error = load_error(write_csv(tmp_path, [*GOOD, row]))
    assert (error.line, error.rule) == (5, "high_below_open_close")


def test_candles_from_rows_follow_the_same_rules_and_line_numbers():
    rows = [
        (0, Decimal("100"), "101", Decimal("99"), "100.5", "2"),
        (MINUTE, "100.5", "101", "100", "100.25"),  # no volume: 0
    ]
    candles = candles_from_rows(rows, source="test rows")
    assert candles.source == "test rows"
    assert candles.sha256 is None
    assert candles.exact(1) == (Decimal("100.5"), Decimal("101"), Decimal("100"), Decimal("100.25"))
    assert candles.volume.tolist() == [2.0, 0.0]

    bad = [*rows, (2 * MINUTE, "101", "100", "100", "101")]
    with pytest.raises(CandleDataError) as caught:
        candles_from_rows(bad)
    assert (caught.value.line, caught.value.rule) == (4, "high_below_open_close")
    assert caught.value.message.startswith("memory line 4: ")

    for broken, rule in [
        ([(0, "1", "1", "1")], "wrong_column_count"),
        ([(0, "1", "1", "one", "1")], "unparsable_number"),
        ([("0", "1", "1", "1", "1")], "unparsable_number"),
        ([], "empty_file"),
    ]:
        with pytest.raises(CandleDataError) as caught:
            candles_from_rows(broken)
        assert caught.value.rule == rule


def test_candles_from_rows_refuses_floats():
    with pytest.raises(FloatMoneyError):
        candles_from_rows([(0, "1", 1.5, "1", "1")])


# --- generated walks -------------------------------------------------------------------------


def test_a_walk_is_valid_real_looking_and_exactly_two_decimals(tmp_path):
    path = write_walk_csv(tmp_path / "walk.csv", 5_000, seed=11, start_price="30000")
    candles = load_candles(path)
    assert len(candles) == 5_000
    assert candles.interval_ms == MINUTE and candles.gaps == []
    assert candles.exact(0)[0] == Decimal("30000.00")
    assert {len(price.split(".")[1]) for row in text_rows(path) for price in row[1:5]} == {2}
    wicks = (candles.high > candles.open) & (candles.high > candles.close)
    assert 0.5 < wicks.mean() < 1.0  # most candles have an upper wick, not all
    assert 20_000 < candles.close.min() < candles.close.max() < 40_000


def test_a_walk_is_the_same_for_a_seed_and_different_across_seeds(tmp_path):
    first = write_walk_csv(tmp_path / "a.csv", 2_000, seed=42).read_bytes()
    again = write_walk_csv(tmp_path / "b.csv", 2_000, seed=42).read_bytes()
    other = write_walk_csv(tmp_path / "c.csv", 2_000, seed=43).read_bytes()
    assert first == again
    assert first != other


def test_generated_rows_are_the_written_file(tmp_path):
    rows = generate_walk(300, seed=5, interval_ms=5 * MINUTE, start_ms=0)
    from_file = load_candles(
        write_walk_csv(tmp_path / "w.csv", 300, seed=5, interval_ms=5 * MINUTE, start_ms=0)
    )
    from_rows = candles_from_rows(rows)
    assert [from_rows.exact(i) for i in range(300)] == [from_file.exact(i) for i in range(300)]
    assert from_file.timestamps.tolist() == [row[0] for row in rows]
    assert from_rows.volume.tolist() == from_file.volume.tolist()


def test_a_wild_walk_never_goes_below_a_cent(tmp_path):
    path = write_walk_csv(
        tmp_path / "wild.csv", 20_000, seed=1, start_price="0.05", volatility="0.05"
    )
    candles = load_candles(path)
    assert min(candles.exact(i)[2] for i in range(len(candles))) == Decimal("0.01")


# --- properties ------------------------------------------------------------------------------


@st.composite
def plain_decimals(draw, low_digits: int = 1):
    """Positive decimals of 1 to 22 significant digits, so some collide in float64."""
    digits = draw(st.integers(min_value=low_digits, max_value=22))
    mantissa = draw(st.integers(min_value=1, max_value=10**digits - 1))
    return Decimal(mantissa).scaleb(-draw(st.integers(min_value=0, max_value=20)))


@st.composite
def valid_rows(draw):
    count = draw(st.integers(min_value=1, max_value=25))
    timestamp = draw(st.integers(min_value=0, max_value=2**40))
    rows = []
    for _ in range(count):
        timestamp += draw(st.integers(min_value=1, max_value=10**7))
        o, c = draw(plain_decimals()), draw(plain_decimals())
        # equal and barely-higher highs make float ties that only the exact check can settle
        h = max(o, c) + draw(st.sampled_from([Decimal(0), Decimal("1e-21")]) | plain_decimals())
        l = min(o, c) - draw(st.sampled_from([Decimal(0), min(o, c) / 3]))  # noqa: E741
        volume = draw(st.just(Decimal(0)) | plain_decimals())
        rows.append((timestamp, o, h, l, c, volume))
    return rows


def as_text(value: Decimal) -> str:
    return format(value, "f")


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=valid_rows())
def test_valid_rows_written_as_csv_load_back_to_the_same_exact_decimals(tmp_path, rows):
    lines = [HEADER_LINE] + [",".join([str(row[0]), *map(as_text, row[1:])]) for row in rows]
    candles = load_candles(write_csv(tmp_path, lines))
    assert len(candles) == len(rows)
    for i, row in enumerate(rows):
        assert candles.exact(i) == row[1:5]
    assert candles.timestamps.tolist() == [row[0] for row in rows]
    # the floats are Python's correctly rounded float() of each text, column by column
    for column, array in enumerate((candles.open, candles.high, candles.low, candles.close,
                                    candles.volume), start=1):
        assert array.tolist() == [float(as_text(row[column])) for row in rows]
    in_memory = candles_from_rows(rows)
    assert [in_memory.exact(i) for i in range(len(rows))] == [
        candles.exact(i) for i in range(len(rows))
    ]


PLAIN_INTEGER = re.compile(r"-?[0-9]+")
PLAIN_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")


@st.composite
def damage(draw, text: str) -> str:
    """Junk, or the same number nudged by far less than a float can show."""
    nudged = st.sampled_from(["-1e-20", "1e-20", "0"]).map(
        lambda delta: as_text(Decimal(text) + Decimal(delta))
    )
    not_plain = st.sampled_from(["1e3", "1E3", "+5", " 7", "7 ", "inf", "nan", "0x1f", "1_0"])
    return draw(st.text(alphabet="0123456789.-e+ ,x", max_size=8) | nudged | not_plain)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=valid_rows(), data=st.data())
def test_one_damaged_field_is_reported_on_its_own_line(tmp_path, rows, data):
    assume(len(rows) >= 2)
    lines = [HEADER_LINE] + [",".join([str(row[0]), *map(as_text, row[1:])]) for row in rows]
    line_no = data.draw(st.integers(min_value=2, max_value=len(lines)))
    column = data.draw(st.integers(min_value=0, max_value=5))
    fields = lines[line_no - 1].split(",")
    fields[column] = new_text = data.draw(damage(fields[column]))
    lines[line_no - 1] = ",".join(fields)
    try:
        candles = load_candles(write_csv(tmp_path, lines))
    except CandleDataError as error:
        # a changed timestamp can make the next line the first one out of order
        expected = {line_no, line_no + 1} if column == 0 else {line_no}
        assert error.line in expected
        assert error.line == line_no or error.rule == "non_increasing_timestamp"
    else:
        # accepted only if it is a plain number that keeps every rule, exactly
        assert (PLAIN_INTEGER if column == 0 else PLAIN_DECIMAL).fullmatch(new_text)
        o, h, l, c = candles.exact(line_no - 2)  # noqa: E741
        assert 0 < l <= min(o, c) and h >= max(o, c)
        if 1 <= column <= 4:
            assert (o, h, l, c)[column - 1] == Decimal(new_text)


@given(st.lists(st.lists(st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{0,4})?", fullmatch=True),
                         max_size=20), min_size=1, max_size=5),
       st.integers(min_value=0, max_value=3))
def test_a_rows_text_read_from_the_buffers_is_the_columns(chunks, cut):
    """Candles.exact reads row texts straight from pyarrow's buffers: the same text as the
    column's own indexing, over several chunks, empty ones and a chunk sliced at its start."""
    import pyarrow as pa

    from adapters.marketdata.csv_candles import _TextColumn

    arrays = [pa.array(texts, pa.string()) for texts in chunks]
    arrays[0] = arrays[0].slice(min(cut, len(arrays[0])))
    column = pa.chunked_array(arrays, pa.string())
    reader = _TextColumn(column)
    assert [reader.text(i) for i in range(len(column))] == column.to_pylist()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([MINUTE, 2 * MINUTE, 3 * MINUTE, 5 * MINUTE, 7 * MINUTE]),
                min_size=1, max_size=40))
def test_the_interval_is_the_most_common_step_the_shortest_on_a_tie(steps):
    """Whatever comes first: a file that starts with a gap, or whose steps tie."""
    times = [0]
    for step in steps:
        times.append(times[-1] + step)
    candles = candles_from_rows([(t, "1", "1", "1", "1") for t in times])
    counts = {step: steps.count(step) for step in steps}
    most = max(counts.values())
    interval = min(step for step, count in counts.items() if count == most)
    assert candles.interval_ms == interval
    assert candles.gaps == [(i + 1, (step - 1) // interval)
                            for i, step in enumerate(steps) if step > interval]


def test_one_candle_has_no_interval_and_no_gaps():
    candles = candles_from_rows([(0, "1", "1", "1", "1")])
    assert candles.interval_ms is None and candles.gaps == []
