"""The rebuild's fast paths read and write exactly what the slow ones did: facts parsed with
orjson hold the standard library's JSON for every event type, audit rows and summaries are
those of the mapper's event, storable text is escaped whichever way it is checked, and a
rebuild splits across processes only when its measurements say that is faster."""

from __future__ import annotations

import enum
import hashlib
import json
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.utils import resolve_topic
from hypothesis import given
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_trading
from domain.dca import DcaConfig
from projections.audit import GENESIS, AuditLog, audit_values, chain
from projections.facts import Fact, FactDecoder, ascii_json, parse_state
from projections.progress import line
from projections.rebuild import Machine, choose, share_out
from projections.summaries import _shown
from projections.tables import Changes, storable, table
from tests.integration.conftest import T0

SCHEMAS = json.loads((Path(__file__).resolve().parent.parent / "event_schemas.json")
                     .read_text())
# Stored kinds: the abstract ``Event`` bases are never stored.
TOPICS = sorted(t for t in SCHEMAS if not t.endswith(".Event"))
ODD_TEXT = "a\x00b \u2400 é \U0001f600 \"quoted\" {braces} \\ end"


def sample(kind: typing.Any, name: str, n: int, odd: str = ODD_TEXT) -> typing.Any:
    """A value of the field's type, different per field, with ``odd`` text."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return None if n % 2 else sample(options[0], name, n, odd)
    if kind is str or kind is typing.Any:
        return f"{name}-{n} {odd}"
    if kind is int:
        return 2**40 + n
    if kind is bool:
        return bool(n % 2)
    if kind is Decimal:
        return Decimal(f"{n}.1234567890123456789012345678")
    if kind is UUID or isinstance(kind, typing.TypeVar):  # the aggregate id's type variable
        return UUID(int=n * 7919 + 1)
    if kind is datetime:
        return datetime(2024, 3, 1, 12, n % 60, 7, 123456, tzinfo=UTC)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return list(kind)[n % len(list(kind))]
    if kind is DcaConfig:
        return DcaConfig(pair="BTC/USDT", base_order_quote=Decimal(100),
                         safety_order_quote=Decimal(50), max_safety_orders=3,
                         price_deviation_pct=Decimal("1.5"), safety_volume_scale=Decimal(2),
                         safety_step_scale=Decimal(1), take_profit_pct=Decimal("1.2"))
    if typing.get_origin(kind) is dict:
        value_kind = typing.get_args(kind)[1]
        return {f"k{i}": sample(value_kind, name, n + i, odd) for i in range(2)}
    if typing.get_origin(kind) is list:
        return [sample(typing.get_args(kind)[0], name, n + i, odd) for i in range(2)]
    raise AssertionError(f"no sample for {kind!r} ({name})")


@pytest.fixture(scope="module")
def app():
    trading = open_trading("memory", clock=SteppingClock(T0), ids=SequentialIds("fast"))
    yield trading
    trading.close()


def stored_events(app, odd: str = ODD_TEXT):
    """One stored event of every type in the schema lock, as a log row."""
    for position, topic in enumerate(TOPICS, start=1):
        cls = resolve_topic(topic)
        hints = typing.get_type_hints(cls)
        values = {name: sample(hints[name], name, i, odd)
                  for i, name in enumerate(SCHEMAS[topic]["fields"])}
        event = cls(**values)
        stored = app.mapper.to_stored_event(event)
        yield event, (position, str(stored.originator_id), stored.originator_version,
                      stored.topic, stored.state, None)


def test_every_event_type_is_in_the_sample():
    assert len(TOPICS) >= 50
    assert "domain.orders:Order.Filled" in TOPICS


@pytest.mark.parametrize("index", range(len(TOPICS)), ids=TOPICS)
def test_facts_parsed_fast_equal_the_standard_json_and_the_mappers_event(app, index):
    event, row = list(stored_events(app))[index]
    fact = FactDecoder(app.mapper)(row)
    assert fact.state == json.loads(row[4])
    assert fact.stored == row[4]
    assert fact.oid == str(event.originator_id)
    assert fact.time == event.timestamp
    for name, value in vars(event).items():
        if name in ("originator_id", "originator_version", "timestamp"):
            continue
        if isinstance(value, Decimal):
            assert str(fact.dec(name)) == str(value)
        elif isinstance(value, UUID):
            assert fact.id_text(name) == str(value)
        elif isinstance(value, enum.Enum):
            assert fact.value(name) == value.value
        elif isinstance(value, str | int | bool) or value is None:
            assert fact.text(name) == value


def test_decimal_fields_read_as_stored_when_facts_share_their_texts(app):
    """Facts converting the same texts (an order's fill and its deal's buy) read each
    field exactly as stored: value and exponent, whichever fact asked first."""
    texts = ["98.500", "98.5", "0.1000000000000000000000000000", "1E+2", "-0", "98.500"]
    facts = []
    for n, text in enumerate(texts):
        stored = json.dumps({"timestamp": {"_type_": "datetime_iso",
                                           "_data_": "2025-01-01T00:00:00+00:00"},
                             "price": {"_type_": "decimal_str", "_data_": text},
                             "fee": None}).encode()
        facts.append(FactDecoder(app.mapper)((n + 1, str(UUID(int=n)), 1,
                                              "domain.orders:Order.Filled", stored)))
    for fact, text in zip(facts, texts, strict=True):
        assert str(fact.dec("price")) == str(Decimal(text))
        assert fact.dec("price").as_tuple() == Decimal(text).as_tuple()
        assert fact.dec("fee") is None


@pytest.mark.parametrize("index", range(len(TOPICS)), ids=TOPICS)
def test_audit_rows_from_fast_facts_equal_those_from_standard_json(app, index):
    _, row = list(stored_events(app))[index]
    fast = FactDecoder(app.mapper)(row)
    slow = Fact(row[0], row[1], row[2], row[3], json.loads(row[4]), row[4])
    assert chain(GENESIS, fast) == chain(GENESIS, slow)
    assert audit_values(fast, GENESIS) == audit_values(slow, GENESIS)
    summary = audit_values(fast, GENESIS)[8]
    if fast.kind == "Order.Filled":  # the template reads each field as _shown would
        assert summary == (f"filled {_shown(fast.state['amount'])} @ "
                           f"{_shown(fast.state['price'])}, fee {_shown(fast.state['fee'])} "
                           f"{_shown(fast.state['fee_currency'])} "
                           f"(trade {_shown(fast.state['trade_id'])})")


@pytest.mark.parametrize("index", range(len(TOPICS)), ids=TOPICS)
def test_the_audit_projection_chains_the_documented_sha256_of_the_stored_bytes(app, index):
    """What an auditor recomputes from the README's definition, whatever the projection
    does to get there faster: sha256(previous hash || "<position>\\n<aggregate id>\\n
    <version>\\n<topic>\\n" || stored bytes), chained from 32 zero bytes."""
    _, row = list(stored_events(app))[index]
    second = (row[0] + 1, row[1], row[2] + 1, row[3], row[4], None)
    projection, out = AuditLog(), Changes(AuditLog.tables)
    decode = FactDecoder(app.mapper)
    projection.apply(decode(row), out)
    projection.apply(decode(second), out)
    (frozen,) = out.freeze()
    expected, previous = [], bytes(32)
    for position, oid, version, topic, stored, _ in (row, second):
        head = f"{position}\n{oid}\n{version}\n{topic}\n".encode()
        previous = hashlib.sha256(previous + head + stored).digest()
        expected.append(previous.hex())
    assert [written[9] for written in frozen.inserts] == expected
    # and every other column is the one the verifier recomputes (``audit verify``)
    recomputed = audit_values(decode(row), bytes.fromhex(expected[0]))
    assert frozen.inserts[0] == AuditLog.tables[0].storable(recomputed)


def written_audit_row(fact: Fact) -> tuple:
    out = Changes(AuditLog.tables)
    AuditLog().apply(fact, out)
    (frozen,) = out.freeze()
    (row,) = frozen.inserts
    return row


@pytest.mark.parametrize("odd", [ODD_TEXT, "plain ASCII, \"quoted\" \\ {braces}"])
@pytest.mark.parametrize("index", range(len(TOPICS)), ids=TOPICS)
def test_audit_rows_are_written_the_same_whether_their_text_is_checked_or_not(app, index,
                                                                              odd):
    _, row = list(stored_events(app, odd))[index]
    fast = FactDecoder(app.mapper)(row)
    checked = Fact(row[0], row[1], row[2], row[3], json.loads(row[4]), row[4])
    assert fast.ascii_text == (odd != ODD_TEXT)  # the check is skipped for plain text only
    assert written_audit_row(fast) == written_audit_row(checked)


@given(st.text())
def test_text_the_ascii_check_passes_is_stored_as_it_is(text):
    data = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode(
        {"text": text}).encode("utf-8", "surrogatepass")
    if ascii_json(data):
        assert storable(text) == text and text.isascii()
    else:  # refused: something the view must escape, or a text that looks like an escape
        assert not (all(" " <= c <= "~" for c in text) and "\\u" not in text)


@pytest.mark.parametrize("stored", [
    b'{"a":"\\ud800 lone","n":1}',  # a lone surrogate escape: orjson refuses it
    b'{"big":123456789012345678901234567890}',  # past 64 bits: orjson makes it a float
    b'{"l":[1,-98765432109876543210],"s":"1234567890123456789012.5"}',
    b'{"spaced": [ 18446744073709551616 ]}',
    b'{"x":NaN,"y":-Infinity}',  # what Python's json accepts and orjson does not
    b'{"f":1.5e300,"t":true,"z":null,"u":"\\u0000\\u2400"}',
    b'{"huge":1e400,"tiny":-1e-400}',  # out of a float's range: msgspec refuses it
    b'{"a":"\\udc00x","b":-0,"c":-0.0}',
])
def test_state_the_fast_parser_refuses_is_read_by_the_standard_library_the_same(app, stored):
    parsed = parse_state(stored)
    expected = json.loads(stored)
    assert json.dumps(parsed, sort_keys=True) == json.dumps(expected, sort_keys=True)
    # and the decoder's own copy of that parse, given the same state as a stored event's
    event = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-01T00:00:00+00:00"},' \
        + stored[1:]
    fact = FactDecoder(app.mapper)((7, str(UUID(int=7)), 1,
                                    "domain.orders:Order.Accepted", event))
    assert json.dumps(fact.state, sort_keys=True) == json.dumps(json.loads(event),
                                                                sort_keys=True)


@pytest.mark.parametrize("index", range(len(TOPICS)), ids=TOPICS)
def test_the_owner_read_alone_is_the_one_the_standard_json_names(app, index):
    """``FactDecoder.owner_of`` (whose each new event is, for the api's read versions)
    reads only ``owner_id``: it is the text the whole state names, for every event type,
    odd text included, and None where a state names none."""
    _, row = list(stored_events(app))[index]
    named = json.loads(row[4]).get("owner_id")
    assert FactDecoder(app.mapper).owner_of(row[:5]) == (
        named if isinstance(named, str) else None)


def test_some_event_types_name_an_owner(app):
    assert sum(b'"owner_id"' in row[4] for _, row in stored_events(app)) >= 3


@pytest.mark.parametrize("owner", [
    b'"plain"', b'null', b'7', b'["a"]', b'{"_type_":"uuid_hex","_data_":"00ff"}',
    b'"\\ud800 lone"',  # a lone surrogate escape: msgspec refuses it, json reads it
    b'"\\u00e9t\\u00e9 \\"q\\""', b'"first","owner_id":"last"',
    b'"x","nested":{"owner_id":"not top"},"big":123456789012345678901234567890',
])
def test_an_owner_of_any_shape_reads_as_the_standard_json_reads_it(app, owner):
    stored = (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-01T00:00:00+00:00"},'
              b'"owner_id":' + owner + b'}')
    named = json.loads(stored).get("owner_id")
    row = (7, str(UUID(int=7)), 1, "domain.orders:Order.Submitted", stored)
    assert FactDecoder(app.mapper).owner_of(row) == (
        named if isinstance(named, str) else None)


def test_the_owner_of_an_older_class_version_is_read_after_its_upcasters(app):
    """A bot created before bots had a mode (``Bot.Created`` v1) is upcast first."""
    _, row = next((event, row) for event, row in stored_events(app)
                  if row[3] == "domain.bots:Bot.Created")
    state = json.loads(row[4])
    state.pop("mode")
    state.pop("class_version", None)
    old = (row[0], row[1], row[2], row[3], json.dumps(state).encode())
    decoder = FactDecoder(app.mapper)
    assert decoder(old).value("mode") == "paper"  # (it was upcast)
    assert decoder.owner_of(old) == state["owner_id"]


FACT_FIELDS = ("position", "oid", "version", "topic", "kind", "state", "stored", "recorded",
               "ascii_text", "iso_time")


def test_routed_rows_are_decoded_as_one_row_is_and_unrouted_ones_never_parsed(app):
    """The runner's loop (``FactDecoder.dispatch``) gives every routed row's route the fact
    the decoder gives for that row alone, odd rows included (text past ASCII, a time
    stored in another zone, a state msgspec refuses, a row without its recorded time),
    in log order; a row of a topic without a route is skipped unparsed (its state is no
    JSON at all here)."""
    time_of = '{"timestamp":{"_type_":"datetime_iso","_data_":"%s"},"n":%s}'
    rows = [row for _, row in stored_events(app)]
    rows += [
        (901, str(UUID(int=901)), 1, "domain.orders:Order.Accepted",
         (time_of % ("2025-01-01T02:00:00+02:00", "1")).encode(), None),
        (902, str(UUID(int=902)), 1, "domain.orders:Order.Accepted",
         (time_of % ("2025-01-01T00:00:00+00:00", "NaN")).encode(), "2025-01-02T00:00:00+00:00"),
        (903, str(UUID(int=903)), 1, "domain.orders:Order.Accepted",
         (time_of % ("2025-01-01T00:00:00+00:00", "2")).encode()),
        (904, str(UUID(int=904)), 1, "domain.nowhere:Never.Routed", b"not json", None),
    ]
    decoder = FactDecoder(app.mapper)
    seen: list[tuple[str, Fact]] = []
    routes = {row[3]: [(lambda fact, tag: seen.append((tag, fact)), f"{n}-a"),
                       (lambda fact, tag: seen.append((tag, fact)), f"{n}-b")]
              for n, row in enumerate(rows)}
    del routes["domain.nowhere:Never.Routed"]
    decoder.dispatch(rows, routes.get, {})
    routed = [row for row in rows if row[3] in routes]
    assert [tag for tag, _ in seen] == [tag for row in routed for _, tag in routes[row[3]]]
    for row, (_, fact), (_, again) in zip(routed, seen[::2], seen[1::2], strict=True):
        assert again is fact
        alone = FactDecoder(app.mapper)(row)
        assert {f: getattr(fact, f) for f in FACT_FIELDS} == {
            f: getattr(alone, f) for f in FACT_FIELDS}
    assert any(not fact.ascii_text for _, fact in seen)
    assert [fact.iso_time for _, fact in seen if fact.position == 901] == [
        "2025-01-01T00:00:00+00:00"] * 2


@given(st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False) | st.text(alphabet="-:,[ 0123456789.\\u\"x\u00e9"),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=8))
def test_any_stored_json_reads_as_the_standard_library_reads_it(value):
    """Integers past 64 bits (which orjson would read as floats) in any place, floats
    (infinities too: ``json`` writes them as ``Infinity``) and strings that look like
    numbers, read exactly as ``json`` reads them, type and all."""
    stored = json.dumps({"v": value}, ensure_ascii=False,
                        separators=(",", ":")).encode("utf-8")
    parsed = parse_state(stored)
    assert parsed == {"v": value}
    assert repr(parsed) == repr(json.loads(stored))


ROWS = table("rows", key=("id",), id="text", note="text", count="int", amount="money")


@pytest.mark.parametrize("note, stored", [
    ("plain", "plain"), ("a\x00b", "a\u24000000b"), ("\u2400", "\u24002400"),
    ("é\ud800", "é\u2400d800"), ("", ""), (None, None)])
def test_rows_store_text_escaped_however_it_is_checked(note, stored):
    values = ROWS.to_db({"id": "k", "note": note, "count": 1, "amount": Decimal("1.0")})
    assert values == ("k", stored, 1, "1.0")
    # a text column given a non-text value falls back to the column-by-column check
    odd = ROWS.storable(("a\x00", 7, 1, "1"))
    assert odd == ("a\u24000000", 7, 1, "1")


COSTS = {"audit": 4.0, "frontend": 3.0, "pnl": 2.5, "leaderboard": 2.0, "balances": 1.5}


def test_projections_are_shared_out_by_measured_cost():
    groups = share_out(list(COSTS), 2, COSTS)
    assert sorted(n for g in groups for n in g) == sorted(COSTS)
    loads = sorted(sum(COSTS[n] for n in g) for g in groups)
    assert loads == [6.0, 7.0]  # the most even split of 13 seconds of work


def test_a_rebuild_splits_only_when_the_measurement_says_it_is_faster():
    quiet = Machine(cpus=2, others=0.0)
    split = choose(50_000, 15.0, 2.0, COSTS, 500_000, 2, quiet)
    assert split.processes == 2 and split.split < split.one_process
    # the same work on one processor, or with both kept busy by others: one process
    assert choose(50_000, 15.0, 2.0, COSTS, 500_000, 2, Machine(1, 0.0)).processes == 1
    assert choose(50_000, 15.0, 2.0, COSTS, 500_000, 2, Machine(2, 1.0)).processes == 1
    # decoding dominates: each process would repeat it
    assert choose(50_000, 15.0, 12.0, {"audit": 1.5, "pnl": 1.5}, 500_000, 2,
                  quiet).processes == 1
    # reading and writing (the wall time beyond decoding and the projections) dominate:
    # each process would repeat the reading
    assert choose(50_000, 40.0, 2.0, COSTS, 500_000, 2, quiet).processes == 1
    # too little left to pay for starting processes
    assert choose(50_000, 15.0, 2.0, COSTS, 5_000, 2, quiet).processes == 1
    # asked for one process
    assert choose(50_000, 15.0, 2.0, COSTS, 500_000, 1, quiet).processes == 1


def test_ledgers_timed_as_one_go_to_one_process_together():
    # pnl, leaderboard and equity share one set of books in one process: timed as one
    # unit, they are never shared out apart (each process would keep the books again)
    costs = {"audit": 4.0, "pnl+leaderboard+equity": 5.0, "frontend": 3.0, "balances": 1.5}
    plan = choose(50_000, 15.0, 2.0, costs, 500_000, 2, Machine(cpus=2, others=0.0))
    assert plan.processes == 2
    ledgers = [g for g in plan.groups if "pnl" in g]
    assert len(ledgers) == 1 and {"leaderboard", "equity"} <= set(ledgers[0])
    assert sorted(n for g in plan.groups for n in g) == sorted(
        ["audit", "pnl", "leaderboard", "equity", "frontend", "balances"])
    one = choose(50_000, 15.0, 2.0, costs, 500_000, 1, Machine(cpus=2, others=0.0))
    assert one.groups == [["audit", "balances", "frontend", "pnl", "leaderboard", "equity"]]


def test_progress_lines_say_speed_and_time_left():
    assert line("rebuild", 100_000, 500_000, 100_000, 2.0) == \
        "rebuild 100,000/500,000 (20%) 50,000 events/s, 8.0s left"
