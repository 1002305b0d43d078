"""An append's columns and seals as our own code builds them (``adapters/event_store/
dumped.py``, ``sealing.py``) are the bytes psycopg and the audit key make for the same
values: what PostgreSQL receives, and every seal a check verifies, do not depend on which
of the two built them."""

from __future__ import annotations

from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer
from psycopg.types.numeric import Int8

from adapters.event_store.dumped import ascii_texts, dump_columns, repeated_text
from adapters.event_store.sealing import Sealing
from adapters.security.audit_key import AuditKey


def psycopg_array(column: list) -> tuple[bytes, int]:
    """psycopg's own binary array of ``column`` and its type."""
    dumper = Transformer().get_dumper(column, PyFormat.BINARY)
    return bytes(dumper.dump(column)), dumper.oid


def ours(column: list) -> tuple[bytes, int]:
    dumped = dump_columns([column])[0]
    return dumped.data, dumped.oid


@settings(max_examples=150, deadline=None)
@given(st.lists(st.uuids(), min_size=1, max_size=30),
       st.lists(st.integers(-2**63, 2**63 - 1), min_size=1, max_size=30),
       st.lists(st.text(max_size=12), min_size=1, max_size=30),
       st.lists(st.binary(max_size=40), min_size=1, max_size=30))
def test_columns_are_psycopg_s_binary_arrays(ids, versions, topics, states):
    """Ids, versions (int8, as the statement casts them), topics (repeated, beyond ASCII)
    and states (any bytes, empty ones too)."""
    topics = topics + topics[: len(topics) // 2]  # the same kinds of event again
    assert ours(ids) == psycopg_array(ids)
    assert ours(versions) == psycopg_array([Int8(v) for v in versions])
    assert ours(topics) == psycopg_array(topics)
    assert ours(states) == psycopg_array(states)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text("0123456789abcdef", min_size=64, max_size=64), min_size=1,
                max_size=20), st.text(max_size=20), st.integers(1, 20))
def test_seal_texts_and_fingerprints_are_psycopg_s_text_arrays(seals, fingerprint, count):
    fast = ascii_texts(seals, 64)
    assert fast is not None and (fast.data, fast.oid) == psycopg_array(seals)
    repeated = repeated_text(fingerprint, count)
    assert (repeated.data, repeated.oid) == psycopg_array([fingerprint] * count)


def test_texts_that_are_not_all_ascii_of_one_width_are_left_to_psycopg():
    assert ascii_texts(["a" * 64, "b" * 63], 64) is None
    assert ascii_texts(["é" * 64], 64) is None
    assert ascii_texts([None], 64) is None  # type: ignore[list-item]
    assert ascii_texts([], 64) is None


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=64),
       st.lists(st.tuples(st.uuids(), st.integers(1, 2**40), st.text(max_size=20),
                          st.binary(max_size=200)), min_size=1, max_size=10))
def test_seals_of_a_batch_are_the_audit_key_s(secret, rows):
    """The batch's HMAC (copied from one keyed object) gives what the key's own one-shot
    seal gives, which is what ``check_seals`` verifies."""
    key = AuditKey(secret)

    class Recorder(Sealing):
        key_source = staticmethod(lambda: key)

    events = [StoredEvent(oid, version, topic, state) for oid, version, topic, state in rows]
    # an aggregate's later events, its id the same object (as a candle's are)
    events += [StoredEvent(e.originator_id, e.originator_version + 1, e.topic, e.state[::-1])
               for e in events[::2]]
    fingerprint, seals = Recorder().seal_texts(events)
    assert fingerprint == key.fingerprint
    assert seals == [key.seal(str(e.originator_id), e.originator_version, e.topic, e.state)
                     for e in events]
    assert [row[3] for row in Recorder().seal_rows(events, lambda oid: oid)] == seals
