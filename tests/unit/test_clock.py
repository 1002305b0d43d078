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
