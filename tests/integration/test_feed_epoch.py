"""``TRADETAPE_FEED_EPOCH``: where the shipped replay's first candle opens. Processes given
the same epoch show the same market, and a benchmark anchored at its launch replays the same
candles every run (with the default, which candles a run sees depends on the time of day)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from application.server_settings import ServerSettings
from domain.errors import DomainError

SHIPPED = Path(__file__).resolve().parents[2] / "adapters/marketdata/data"


def shipped_timestamps(count: int) -> list[int]:
    with open(SHIPPED / "binance_BTC_USDT-1m-2025-11.csv", newline="") as file:
        rows = csv.DictReader(file)
        return [int(next(rows)["timestamp_ms"]) for _ in range(count)]


def test_the_epoch_is_read_as_an_instant_whatever_its_offset():
    given = ServerSettings.from_environ({"TRADETAPE_FEED_EPOCH": "2030-01-01T02:00:00+02:00"})
    zulu = ServerSettings.from_environ({"TRADETAPE_FEED_EPOCH": "2030-01-01T00:00:00Z"})
    default = ServerSettings.from_environ({})

    assert given.feed_epoch == zulu.feed_epoch == datetime(2030, 1, 1, tzinfo=UTC)
    assert default.feed_epoch == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "2030-01-01T00:00:00", "2030-13-01T00:00Z"])
def test_an_epoch_without_an_offset_or_not_a_time_is_refused_by_name(text):
    with pytest.raises(DomainError) as refused:
        ServerSettings.from_environ({"TRADETAPE_FEED_EPOCH": text})

    assert refused.value.code == "INVALID_SETTING"
    assert refused.value.field == "TRADETAPE_FEED_EPOCH"


def test_a_server_replays_the_shipped_series_from_its_epoch(tmp_path):
    from application.bootstrap import open_runtime

    epoch = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    runtime = open_runtime(ServerSettings(database_url=f"sqlite:///{tmp_path / 'e.sqlite'}",
                                          speed=60, feed_epoch=epoch))
    try:
        feed = runtime.loop.feeds[0]
        # at 60x a one-minute candle closes every second: 3.5 s after the epoch, three have
        # closed, and a first poll delivers the latest of them, the series' third
        delivered = feed.poll(epoch + timedelta(seconds=3.5))
        later = feed.poll(epoch + timedelta(seconds=5.5))
    finally:
        runtime.stop()

    first_five = shipped_timestamps(5)
    assert [c.ts_ms for c in delivered] == [first_five[2]]
    assert [c.ts_ms for c in later] == first_five[3:5]
