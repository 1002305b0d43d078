"""Our prebuilt JSON transcoder writes exactly the library's bytes: stores written before
and after it, or by either, hold the same events."""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.marketdata.csv_candles import candles_from_rows
from application.bootstrap import open_trading, run_backtest_on
from application.replay import read_log
from application.transcodings import PrebuiltJSONTranscoder, register_domain_transcodings
from domain.dca import DcaConfig
from domain.orders import OrderStatus

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "dca_backtest_cases.json"


def test_prebuilt_transcoder_writes_the_same_bytes_as_the_library_for_every_event_kind():
    app = open_trading("memory")
    assert isinstance(app.mapper.transcoder, PrebuiltJSONTranscoder)
    for case in json.loads(GOLDEN.read_text()):
        run_backtest_on(candles_from_rows(case["candles"]), DcaConfig.from_mapping(
            case["config"]), fee_rate=Decimal(case["fee_rate"]), balance=Decimal("150"),
            store_url="memory", seed=case["name"], trading=app)
    library = JSONTranscoder()
    Application.register_transcodings(app, library)
    register_domain_transcodings(library)
    topics = set()
    for notification in read_log(app):
        state = app.mapper.transcoder.decode(notification.state)
        assert library.encode(state) == notification.state
        assert library.decode(notification.state) == state
        topics.add(notification.topic)
    assert len(topics) >= 12  # bots, deals, orders (incl. rejections), runs


def _transcoders() -> tuple[PrebuiltJSONTranscoder, JSONTranscoder]:
    app = open_trading("memory")
    library = JSONTranscoder()
    Application.register_transcodings(app, library)
    register_domain_transcodings(library)
    return app.mapper.transcoder, library


OURS, LIBRARY = _transcoders()  # one pair for every example: what ours last saw stays


_values = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    # equal values written differently: each must keep its own digits
    st.sampled_from(["1", "1.0", "1.00", "-0", "0", "0E-8"]).map(Decimal),
    st.datetimes(timezones=st.just(UTC)),
    st.uuids(),
    st.sampled_from(list(OrderStatus)),
    st.text(max_size=5),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_values, min_size=1, max_size=4), min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=12))
def test_values_encoded_again_in_later_states_give_the_library_s_bytes(states, repeats):
    """A candle's events share objects (one timestamp, the same price): the transcoder
    answers such an object from one it encoded lately; every state still encodes to the
    library's bytes, whatever repeats and whatever comes in between."""
    # states that reuse objects of earlier states (the same objects, not equal copies)
    for s, v in repeats:
        source = states[s % len(states)]
        states.append([source[v % len(source)], *states[-1]])
    for values in states:
        state = {f"f{i}": value for i, value in enumerate(values)}
        assert OURS.encode(state) == LIBRARY.encode(state)
        assert OURS.decode(OURS.encode(state)) == state



def test_values_kept_past_the_limit_are_forgotten_and_still_encoded_as_the_library():
    """The transcoder keeps at most ``REMEMBERED`` values; past that it forgets them all
    at once (a long-running server's memory stays bounded), and encodes them again."""
    import uuid

    from application import flat_json

    ours, library = _transcoders()
    values = [Decimal(n) for n in range(flat_json.REMEMBERED + 10)]
    for value in values:
        ours.encode({"amount": value})
    assert len(ours._flat._seen) < flat_json.REMEMBERED  # forgotten once, kept again since
    for value in (values[0], values[-1], values[flat_json.REMEMBERED - 1], uuid.uuid4()):
        assert ours.encode({"id": value, "again": value}) == library.encode(
            {"id": value, "again": value})


class _Text(str):
    pass


_others = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),  # quotes, controls, emoji
    st.text(max_size=3).map(_Text),  # a subclass: the C encoder's own way
    st.lists(st.integers() | st.text(max_size=3) | st.decimals(allow_nan=False,
                                                               allow_infinity=False),
             max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers() | st.uuids(), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _values | _others, max_size=8))
def test_any_state_is_written_as_the_library_writes_it(state):
    """A state written field by field gives the library's bytes whatever its fields hold:
    nested lists and dicts, floats, booleans, None, strings to escape, a str subclass."""
    assert OURS.encode(state) == LIBRARY.encode(state)
