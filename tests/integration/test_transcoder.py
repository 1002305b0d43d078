"""Our prebuilt JSON transcoder writes exactly the library's bytes: stores written before
and after it, or by either, hold the same events."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder

from adapters.marketdata.csv_candles import candles_from_rows
from application.bootstrap import open_trading, run_backtest_on
from application.replay import read_log
from application.transcodings import PrebuiltJSONTranscoder, register_domain_transcodings
from domain.dca import DcaConfig

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
