"""``tradetape emergency stop|resume`` from another process halts and restarts a running
server's trading: the live loop reads the switch from the store before every candle."""

from __future__ import annotations

import json
from datetime import timedelta

from api.cli import main
from tests.integration.test_live_loop import T0, world


def emergency(capsys, url: str, *args: str) -> tuple[int, str, str]:
    code = main(["emergency", *args, "--database", url])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_stop_recorded_by_the_command_line_halts_the_servers_trading(tmp_path, capsys):
    clock, trading, bot_id, loop, _ = world(tmp_path)  # the server's own application
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    clock.current = T0 + timedelta(seconds=1)
    assert loop.step() > 0  # the server has read the (absent) switch and trades

    code, out, _ = emergency(capsys, url, "stop", "--reason", "exchange incident",
                             "--actor", "ana")
    assert (code, out.strip()) == (0, "trading halted by operator:ana: exchange incident")
    halted_at = trading.recorder.max_notification_id()
    bot = trading.get_bot(bot_id)
    for second in range(2, 12):  # 100 market minutes: no order placed or filled
        clock.current = T0 + timedelta(seconds=second)
        assert loop.step() == 0
    assert trading.recorder.max_notification_id() == halted_at
    assert trading.get_bot(bot_id).version == bot.version
    assert json.loads(emergency(capsys, url, "status", "--json")[1]) == {
        "halted": True, "reason": "exchange incident"}

    assert emergency(capsys, url, "resume", "--actor", "ana")[0] == 0
    clock.current = T0 + timedelta(seconds=12)
    assert loop.step() > 0  # trading carries on
    assert emergency(capsys, url, "status")[1].strip() == "trading is running"
    switch_events = list(trading.events.get(trading.trading_switch().id))
    assert [(type(e).__name__, e.actor) for e in switch_events] == [
        ("Installed", "operator:ana"), ("EmergencyStopped", "operator:ana"),
        ("EmergencyResumed", "operator:ana")]


def test_stop_needs_a_reason_and_resume_needs_a_stop(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    code, _, err = emergency(capsys, url, "stop", "--reason", "  ", "--actor", "ana")
    assert (code, err.strip()) == (2, "error: REASON_REQUIRED: --reason: say why trading "
                                      "is halted")
    code, _, err = emergency(capsys, url, "resume", "--actor", "ana")
    assert (code, err.strip()) == (2, "error: NOT_HALTED: trading is not halted")


def test_a_resume_stored_before_resumes_had_reasons_reads_back_without_one(tmp_path):
    from eventsourcing.persistence import StoredEvent

    from application.bootstrap import open_trading
    from domain.system import TradingSwitch
    from tests.integration.conftest import T0 as AT

    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    trading = open_trading(url)
    try:
        switch = trading.emergency_stop("incident", actor="operator:ana")
        v1 = trading.mapper.transcoder.encode({
            "timestamp": AT, "actor": "operator:ana", "correlation_id": "old"})
        trading.recorder.insert_events([StoredEvent(
            switch.id, switch.version + 1, "domain.system:TradingSwitch.EmergencyResumed", v1)])
        stored = list(trading.events.get(switch.id))[-1]
        assert isinstance(stored, TradingSwitch.EmergencyResumed) and stored.reason is None
        assert trading.is_halted() is False
    finally:
        trading.close()
