"""A server's engine steps freeze what they leave alive (application/paper_heap.py): later
passes of the collector do not walk it, and cyclic garbage frozen with it is collected once
the frozen heap has doubled."""

from __future__ import annotations

import gc
import weakref

import pytest

from application.collector import collector_paused
from application.paper_heap import StepSurvivors


class _Node:
    pass


@pytest.fixture
def thawed():
    gc.collect()
    yield
    gc.unfreeze()  # (what these tests froze goes back to the collector)
    gc.collect()


def _cycle() -> weakref.ref:
    """An object in a cycle, made "during a step": only a pass of the collector frees it."""
    node = _Node()
    node.me = node
    return weakref.ref(node)


def test_what_a_step_leaves_alive_is_not_walked_by_later_passes(thawed):
    survivors = StepSurvivors()
    survivors.after_step()  # the first step: what the process started with
    kept = [_Node() for _ in range(1000)]
    survivors.after_step()
    walked = {id(o) for o in gc.get_objects()}
    assert not walked.intersection(id(o) for o in kept)
    dropped = _cycle()  # made in a step, garbage after it
    survivors.after_step()
    gc.collect()
    assert dropped() is not None  # frozen: no pass looks at it
    assert survivors.full_passes == 0


def test_cyclic_garbage_frozen_with_a_step_is_collected_once_the_heap_doubled(thawed):
    survivors = StepSurvivors(growth=2.0, small=1000, spacing=1)
    survivors.after_step()
    dropped = _cycle()
    survivors.after_step()
    assert dropped() is not None
    with collector_paused():  # (as a step runs)
        grown = [[] for _ in range(2 * gc.get_freeze_count())]  # the heap more than doubles
        survivors.after_step()
    assert survivors.full_passes == 1
    assert dropped() is None  # thawed, collected, and the live heap frozen again
    assert not {id(o) for o in gc.get_objects()}.intersection(id(o) for o in grown[:100])


def test_a_heap_that_grew_less_is_not_walked_again(thawed):
    survivors = StepSurvivors(growth=2.0, small=1000, spacing=1)
    survivors.after_step()
    dropped = _cycle()
    survivors.after_step()
    with collector_paused():
        some = [[] for _ in range(gc.get_freeze_count() // 2)]  # grown by half: no pass
        survivors.after_step()
    assert survivors.full_passes == 0
    assert dropped() is not None and some


def test_what_survived_between_steps_counts_too(thawed):
    """Objects made between steps (with the collector on) escape the free count: the
    frozen heap is counted every ``every`` steps all the same."""
    survivors = StepSurvivors(growth=2.0, small=1000, every=4)
    survivors.after_step()
    dropped = _cycle()
    survivors.after_step()  # frozen with the second step
    grown = [[] for _ in range(2 * gc.get_freeze_count())]  # passes move them along
    survivors.after_step()
    assert survivors.full_passes == 0 and dropped() is not None  # not counted yet
    survivors.after_step()  # the fourth: counted
    assert survivors.full_passes == 1
    assert dropped() is None and grown
