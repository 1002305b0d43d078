"""Seeded ids are uuid5 of the seed's namespace and a counter: stored runs name their
aggregates with them, so the formula may never change (a replay re-derives them)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from adapters.clock import SequentialIds


@given(seed=st.text(max_size=40), count=st.integers(min_value=1, max_value=300))
def test_seeded_ids_are_uuid5_of_the_seed_namespace_and_the_counter(seed, count):
    ids = SequentialIds(seed)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"tradetape:{seed}")
    made = [ids.new_id() for _ in range(count)]
    assert made == [uuid.uuid5(namespace, str(n)) for n in range(1, count + 1)]
    assert all(u.version == 5 and u.variant == uuid.RFC_4122 for u in made)


def test_random_ids_are_version_7_in_time_order_and_never_repeat():
    """Drawn in batches from one ``os.urandom``: RFC 9562's version 7 (the RFC variant),
    none twice across batches and instances, and an id drawn later sorts after one drawn a
    millisecond before it (what keeps a heavy candle's new rows at the indexes' edge)."""
    import time

    from adapters.clock import RandomIds, _random_ids

    _random_ids.clear()  # (a fresh batch: its stamp is now)
    before_ms = time.time_ns() // 1_000_000
    made = [RandomIds().new_id() for _ in range(700)] + [RandomIds().new_id() for _ in range(700)]
    assert len(set(made)) == len(made)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    assert all(uuid.UUID(u.hex) == u and hash(u) == hash(uuid.UUID(u.hex)) for u in made)
    stamps = [u.int >> 80 for u in made]
    assert before_ms <= min(stamps) and max(stamps) <= time.time_ns() // 1_000_000
    time.sleep(0.002)
    _random_ids.clear()
    later = RandomIds().new_id()
    assert all(later > u for u in made)


def test_a_forked_child_draws_none_of_its_parents_buffered_ids():
    """A server process forked after its parent drew an id must not hand out the ids the
    parent still holds buffered (the same deal or order id twice in the log)."""
    import os

    from adapters.clock import RandomIds

    ids = RandomIds()
    ids.new_id()  # the parent now holds a batch
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's side
        os.write(write, b"".join(ids.new_id().bytes for _ in range(50)))
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    raw = b""
    while chunk := os.read(read, 4096):
        raw += chunk
    os.close(read)
    theirs = {uuid.UUID(bytes=raw[i:i + 16]) for i in range(0, len(raw), 16)}
    ours = {ids.new_id() for _ in range(50)}
    assert len(theirs) == 50 and not theirs & ours
