"""The writer thread's short switch interval is the process's only while a writer is open:
the rest of the process (a server's other threads) gets CPython's own back afterwards, also
after a batch that failed."""

from __future__ import annotations

import sys

import pytest

from projections.store import SQLiteViewStore
from projections.writer import SWITCH_INTERVAL, ThreadedWriter


@pytest.fixture
def usual_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield 0.005
    sys.setswitchinterval(before)


def test_the_interval_is_short_while_writers_are_open_and_put_back_after(tmp_path,
                                                                         usual_interval):
    store = SQLiteViewStore(tmp_path / "views.db")
    seen = []
    try:
        first = ThreadedWriter(store)
        second = ThreadedWriter(store)
        first.submit(lambda s: seen.append(sys.getswitchinterval()))
        first.drain()
        first.close()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)  # second still open
        second.close()
        second.close()  # twice: counted once
    finally:
        store.close()
    assert seen == [pytest.approx(SWITCH_INTERVAL)]
    assert sys.getswitchinterval() == pytest.approx(usual_interval)


def test_a_failed_batch_puts_the_interval_back_too(tmp_path, usual_interval):
    store = SQLiteViewStore(tmp_path / "views.db")

    def fails(_):
        raise RuntimeError("disk full")

    writer = ThreadedWriter(store)
    try:
        writer.submit(fails)
        with pytest.raises(RuntimeError):
            writer.drain()
    finally:
        writer.close()
        store.close()
    assert sys.getswitchinterval() == pytest.approx(usual_interval)
