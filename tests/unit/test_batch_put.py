"""A batch's events mapped and recorded as one (``adapters/event_store/batch_put.py``) are
the library's: the same stored events, byte for byte, and the same recordings when read."""

from __future__ import annotations

import zlib

from eventsourcing.persistence import EventStore, Mapper
from eventsourcing.popo import POPOApplicationRecorder

from adapters.event_store.batch_put import BatchEventStore, to_stored_events
from application.replay import read_log
from tests.unit.test_bulk_decoding import a_traded_log


class _Zlib:  # the library's optional compressor, as COMPRESSOR_TOPIC would give it
    compress, decompress = staticmethod(zlib.compress), staticmethod(zlib.decompress)


def traded_events() -> tuple[Mapper, list]:
    trading = a_traded_log("memory")
    try:
        return trading.mapper, [trading.mapper.to_domain_event(n) for n in read_log(trading)]
    finally:
        trading.close()


def test_a_batch_is_stored_and_recorded_as_the_library_s_put_does():
    mapper, events = traded_events()
    assert len({type(e) for e in events}) >= 10  # bots, deals, orders: created and changed
    library = EventStore(mapper, POPOApplicationRecorder()).put(events)
    ours = BatchEventStore(mapper, POPOApplicationRecorder()).put(events)
    assert ours.positions == [r.notification.id for r in library]
    assert list(ours) == list(library)  # each Recording: the event, its Notification
    assert ours[1:3] == library[1:3] and len(ours) == len(library)


def test_stored_events_match_the_mapper_s_with_a_compressor_and_another_mapper():
    mapper, events = traded_events()
    squeezed = Mapper(mapper.transcoder, compressor=_Zlib())
    assert to_stored_events(squeezed, events) == list(map(squeezed.to_stored_event, events))

    class Marked(Mapper):  # a mapper of its own: its own to_stored_event is used
        def to_stored_event(self, domain_event):
            stored = super().to_stored_event(domain_event)
            return type(stored)(stored.originator_id, stored.originator_version,
                                stored.topic, stored.state + b" ")

    marked = Marked(mapper.transcoder)
    assert [s.state[-1:] for s in to_stored_events(marked, events[:3])] == [b" "] * 3


def test_an_aggregate_recorder_gives_no_positions_as_the_library_s_put():
    mapper, events = traded_events()
    from eventsourcing.popo import POPOAggregateRecorder

    ours = BatchEventStore(mapper, POPOAggregateRecorder()).put(events[:5])
    assert ours.positions == [] and list(ours) == []
    assert EventStore(mapper, POPOAggregateRecorder()).put(events[:5]) == []
