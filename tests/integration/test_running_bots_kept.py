"""The bots that need an engine, kept current from the log by the lease tick
(``application/running_bots.py``): a deal started or finished is taken from the log's
topics without loading the bot again, and what the tick then knows is what a fresh read of
every bot finds, through deal cycles, a pause, a resume and a stop (PostgreSQL)."""

from __future__ import annotations

from application.replay import read_log
from application.running_bots import DEAL_CYCLE, RunningBots
from tests.integration.test_restart_book import busy_world, candles  # noqa: F401 (fixture)


def _sorted(candidates) -> list:
    return sorted(candidates, key=lambda c: str(c.bot_id))


def _deal_cycles(trading, after: int) -> int:
    return sum(1 for _ in read_log(trading, sorted(DEAL_CYCLE), first=after + 1))


def test_bots_kept_current_through_deal_cycles_are_what_a_fresh_read_finds(
        postgres_url, candles, monkeypatch):  # noqa: F811
    world, (second, third, _idle) = busy_world(postgres_url, candles)
    trading = world.trading
    kept = RunningBots(trading)
    kept()
    loaded: list[int] = []
    load_many = trading.load_many
    monkeypatch.setattr(trading, "load_many",
                        lambda ids, cls: loaded.append(len(ids)) or load_many(ids, cls))

    def pause() -> None:
        with world.runner.lock:
            trading.pause_bot(third, actor="u2")

    def resume() -> None:
        with world.runner.lock:
            trading.start_bot(third, actor="u2")

    def stop() -> None:
        with world.runner.lock:
            trading.stop_bot(second, actor="u2")

    cycles = 0  # deal starts and finishes the kept bots took from the log alone
    for start, end, command in ((400, 1000, None), (1000, 1010, pause), (1010, 1800, None),
                                (1800, 1810, stop), (1810, 2000, None), (2000, 2010, resume),
                                (2010, 2400, None)):
        position = kept.position
        world.feed(candles, start, end)
        if command is not None:
            command()
        loaded.clear()
        got = kept()
        if command is None:  # only the engines' deals moved: no bot loaded again
            assert sum(loaded) == 0, (start, end, loaded)
            cycles += _deal_cycles(trading, position)
        assert _sorted(got) == _sorted(RunningBots(trading)()), (start, end)
    assert cycles >= 4
    assert third in {c.bot_id for c in got} and second not in {c.bot_id for c in got}
