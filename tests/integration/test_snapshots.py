"""Snapshots are a disposable cache: an aggregate loaded from a snapshot and its later events
equals the one replayed from all its events; a snapshot another version of the code took, or
one whose event at its version no longer carries its time, is ignored; deleting them all
changes no answer. Many aggregates loaded at once (``Trading.load_many``) equal the ones the
library's repository loads one at a time."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from application import bulk_load, snapshots
from application.bootstrap import open_trading
from domain.bots import Bot
from domain.dca import DcaConfig
from domain.deals import Deal

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOT = {"pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
       "max_safety_orders": 3, "price_deviation_pct": "1", "safety_volume_scale": "1.5",
       "safety_step_scale": "1.2", "take_profit_pct": "1"}
# What a user can do to a bot (each step one command, refused ones recorded nowhere).
STEPS = st.lists(st.sampled_from(["start", "pause", "rename", "edit", "optin", "optout"]),
                 min_size=0, max_size=40)


def command(trading, bot_id, step: str, n: int) -> None:
    from domain.errors import DomainError

    config = DcaConfig.from_mapping({**BOT, "take_profit_pct": str(1 + n % 7)})
    action = {"start": lambda: trading.start_bot(bot_id, "u1"),
              "pause": lambda: trading.pause_bot(bot_id, "u1"),
              "rename": lambda: trading.rename_bot(bot_id, f"bot {n}", "u1"),
              "edit": lambda: trading.edit_bot_config(bot_id, config, "u1"),
              "optin": lambda: trading.set_leaderboard_opt_in(bot_id, True, "u1"),
              "optout": lambda: trading.set_leaderboard_opt_in(bot_id, False, "u1")}[step]
    with contextlib.suppress(DomainError):  # refused in that state: nothing recorded
        action()


def forget(trading, *ids) -> None:
    """Out of the repository's cache: the next load reads the store."""
    for aggregate_id in ids:
        with contextlib.suppress(KeyError):
            trading.repository.cache.get(aggregate_id, evict=True)


def state(aggregate) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def fresh_load(url: str, ids, kind) -> dict:
    """Loaded one at a time by the library's repository, with snapshots turned off."""
    import os

    os.environ["TRADETAPE_SNAPSHOTS"] = "0"
    try:
        trading = open_trading(url)
    finally:
        del os.environ["TRADETAPE_SNAPSHOTS"]
    try:
        assert trading.snapshots is None
        return {i: state(trading.load(i, kind)) for i in ids}
    finally:
        trading.close()


@pytest.fixture
def trading(postgres_url):
    app = open_trading(postgres_url, clock=SteppingClock(T0, timedelta(seconds=1)),
                       ids=SequentialIds("snapshots"))
    yield app
    app.close()


def a_bot(trading, name: str = "b"):
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    return trading.create_bot(owner_id="u1", name=name, config=DcaConfig.from_mapping(BOT),
                              exchange_account_id=str(account))


def test_aggregates_loaded_with_and_without_snapshots_are_equal(trading, postgres_url,
                                                                monkeypatch):
    monkeypatch.setattr(bulk_load, "SNAPSHOT_AFTER", 1)
    ids = [a_bot(trading, f"b{i}") for i in range(3)]
    bot_count = [0]

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(before=STEPS, after=STEPS, which=st.integers(0, 2))
    def run(before, after, which):
        bot_id = ids[which]
        for n, step in enumerate(before):
            command(trading, bot_id, step, n)
        trading.load_many(ids, Bot)  # snapshots of what was replayed
        for n, step in enumerate(after):
            command(trading, bot_id, step, n + 100)
        forget(trading, *ids)
        many = {i: state(a) for i, a in trading.load_many(ids, Bot).items()}
        one_by_one = {i: state(trading.load(i, Bot)) for i in ids}
        assert many == one_by_one == fresh_load(postgres_url, ids, Bot)
        bot_count[0] += 1

    run()
    stored = trading.snapshots.recorder.select_events(ids[0])
    assert stored, "the loads took snapshots"


def forge(trading, bot_id, **changes):
    """A snapshot of the bot as it stands but with ``changes`` made: if a load shows them,
    the load used it."""
    bot = trading.load(bot_id, Bot)
    for name, value in changes.items():
        setattr(bot, name, value)
    forged = snapshots.StampedSnapshot.take(bot)
    trading.snapshots.put([forged])
    forget(trading, bot_id)
    return forged


def test_a_snapshot_is_used_while_its_code_and_its_events_match(trading):
    bot_id = a_bot(trading)
    trading.start_bot(bot_id, "u1")
    forge(trading, bot_id, name="from the snapshot")
    assert trading.load(bot_id, Bot).name == "from the snapshot"
    assert trading.load_many([bot_id], Bot)[bot_id].name == "from the snapshot"


def test_a_snapshot_taken_by_other_code_is_ignored(trading, monkeypatch):
    bot_id = a_bot(trading)
    trading.start_bot(bot_id, "u1")
    forge(trading, bot_id, name="from the snapshot")
    monkeypatch.setattr(snapshots, "code_version", lambda cls: "another version")
    forget(trading, bot_id)
    assert trading.load(bot_id, Bot).name == "b"
    assert trading.load_many([bot_id], Bot)[bot_id].name == "b"


def test_a_snapshot_whose_event_no_longer_carries_its_time_is_ignored(trading):
    """E.g. a log restored from a backup that ends before the snapshot, then written on."""
    bot_id = a_bot(trading)
    trading.start_bot(bot_id, "u1")
    bot = trading.load(bot_id, Bot)
    bot.name = "from the snapshot"
    stale = snapshots.StampedSnapshot.take(bot)
    trading.snapshots.put([replace(stale, timestamp=stale.timestamp - timedelta(days=1))])
    forget(trading, bot_id)
    assert trading.load(bot_id, Bot).name == "b"
    assert trading.load_many([bot_id], Bot)[bot_id].name == "b"


def test_deleting_every_snapshot_changes_no_answer(trading, postgres_url, monkeypatch):
    monkeypatch.setattr(bulk_load, "SNAPSHOT_AFTER", 1)
    ids = [a_bot(trading, f"b{i}") for i in range(4)]
    for n in range(30):
        command(trading, ids[n % 4], ("start", "pause", "rename")[n % 3], n)
    with_snapshots = {i: state(a) for i, a in trading.load_many(ids, Bot).items()}
    forget(trading, *ids)
    assert {i: state(a) for i, a in trading.load_many(ids, Bot).items()} == with_snapshots
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(postgres_url).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        deleted = conn.execute(
            f'DELETE FROM "{env["POSTGRES_SCHEMA"]}".trading_snapshots').rowcount
    assert deleted >= 4
    forget(trading, *ids)
    assert {i: state(a) for i, a in trading.load_many(ids, Bot).items()} == with_snapshots
    assert fresh_load(postgres_url, ids, Bot) == with_snapshots


def test_many_loads_leave_out_what_is_missing_or_of_another_kind(trading, monkeypatch):
    bot_id = a_bot(trading)
    import uuid

    missing = uuid.uuid4()
    assert list(trading.load_many([bot_id, missing], Bot)) == [bot_id]
    assert trading.load_many([bot_id], Deal) == {}
    monkeypatch.setenv(bulk_load.SWITCH, "0")  # the library's path, one at a time
    assert list(trading.load_many([bot_id, missing], Bot)) == [bot_id]
    assert trading.load_many([bot_id], Deal) == {}


def test_a_snapshot_that_would_not_read_back_equal_is_not_written(trading):
    bot_id = a_bot(trading)
    bot = trading.load(bot_id, Bot)
    bot.odd = {1: Decimal("1")}  # an int key comes back as text: not the same aggregate
    assert bulk_load.keep_snapshots(trading, [bot]) == 0
    assert trading.snapshots.recorder.select_events(bot_id) == []


def test_a_snapshot_is_checked_against_its_event_without_decoding_it(trading):
    """A start loads tens of thousands of snapshotted aggregates: the event at each one's
    version is told to carry the snapshot's time from its stored bytes; an event with
    another time (or bytes of another shape) is decoded and compared as before."""
    bot_id = a_bot(trading)
    trading.start_bot(bot_id, "u1")
    snapshot = snapshots.StampedSnapshot.take(trading.load(bot_id, Bot))
    at_version = trading.recorder.select_events(bot_id, gt=snapshot.originator_version - 1,
                                                lte=snapshot.originator_version)[0]

    def no_decoding(_):
        raise AssertionError("decoded")

    assert bulk_load._still_at(snapshot, at_version, no_decoding)
    decoded = []
    for other in (replace(snapshot, timestamp=snapshot.timestamp + timedelta(microseconds=1)),
                  replace(snapshot, originator_version=snapshot.originator_version + 1)):
        assert not bulk_load._still_at(other, at_version, lambda s: decoded.append(s) or
                                       trading.mapper.to_domain_event(s))
    assert len(decoded) == 1  # another time: decoded to be sure; another version: no need
    squeezed = replace(at_version, state=at_version.state.replace(b'{"timestamp":',
                                                                  b'{ "timestamp":'))
    assert bulk_load._still_at(snapshot, squeezed, trading.mapper.to_domain_event)


def stored_snapshot(trading, aggregate_id):
    """The newest snapshot of the aggregate as stored, decoded (None: none)."""
    stored = trading.snapshots.recorder.select_events(aggregate_id, desc=True, limit=1)
    return trading.snapshots.store.mapper.to_domain_event(stored[0]) if stored else None


def test_a_snapshot_taken_by_other_code_is_replaced_by_one_this_code_reads(trading,
                                                                          monkeypatch):
    """Else it kept its twin out until the aggregate moved on: after an upgrade, every
    start replayed every aggregate that did not change since."""
    bot_id = a_bot(trading)
    trading.start_bot(bot_id, "u1")
    monkeypatch.setattr(snapshots, "code_version", lambda cls: "another version")
    forge(trading, bot_id, name="from the snapshot")
    monkeypatch.undo()
    assert trading.load_many([bot_id], Bot)[bot_id].name == "b"  # replayed
    forget(trading, bot_id)
    replaced = stored_snapshot(trading, bot_id)
    assert snapshots.usable(replaced)
    assert replaced.originator_version == trading.load(bot_id, Bot).version
    assert trading.load_many([bot_id], Bot)[bot_id].name == "b"


def test_a_snapshot_in_the_older_format_is_used_then_packed(trading):
    bot_id = a_bot(trading)
    trading.start_bot(bot_id, "u1")
    forge(trading, bot_id, name="from the snapshot")  # the library's JSON of its state
    assert type(stored_snapshot(trading, bot_id)) is snapshots.StampedSnapshot
    assert trading.load_many([bot_id], Bot)[bot_id].name == "from the snapshot"
    packed = stored_snapshot(trading, bot_id)
    assert type(packed) is snapshots.PackedSnapshot and snapshots.usable(packed)
    forget(trading, bot_id)
    assert trading.load_many([bot_id], Bot)[bot_id].name == "from the snapshot"
    assert trading.load(bot_id, Bot).name == "from the snapshot"  # the library's path too


def test_every_traded_aggregate_reads_back_equal_from_its_packed_snapshot(postgres_url):
    """Bots, deals with fills and sells, orders of every kind, accounts: packed, stored,
    read back and made again, each equals the aggregate, as the library's JSON gives it."""
    from application.replay import read_log
    from tests.unit.test_bulk_decoding import a_traded_log

    trading = a_traded_log(postgres_url)
    try:
        ids = list(dict.fromkeys(n.originator_id for n in read_log(trading)))
        mapper = trading.snapshots.store.mapper
        for aggregate_id in ids:
            aggregate = trading.repository.get(aggregate_id)
            for kind in (snapshots.PackedSnapshot, snapshots.StampedSnapshot):
                again = mapper.to_domain_event(mapper.to_stored_event(kind.take(aggregate)))
                assert type(again) is kind
                assert state(again.mutate(None)) == state(aggregate)
        kinds = {type(trading.repository.get(i)).__name__ for i in ids}
        assert {"Bot", "Deal", "Order", "ExchangeAccount"} <= kinds
    finally:
        trading.close()


def test_a_packed_snapshot_that_does_not_unpack_is_ignored(trading):
    """E.g. a layout that names fewer attributes than it holds values: replayed instead."""
    bot_id = a_bot(trading)
    trading.start_bot(bot_id, "u1")
    bot = trading.load(bot_id, Bot)
    packed = snapshots.PackedSnapshot.take(bot)
    broken = replace(packed, state=[packed.state[0], *packed.state[1:], "one too many"])
    trading.snapshots.put([broken])
    forget(trading, bot_id)
    assert trading.load(bot_id, Bot).name == "b"
    assert trading.load_many([bot_id], Bot)[bot_id].name == "b"


def test_an_account_with_observed_balances_is_snapshotted_and_reads_back_equal(trading):
    """An account's observed balances are (free, locked) tuples; JSON gives lists back, so
    no account was ever snapshotted and every start replayed each one. Now its snapshot is
    written, a load uses it, and the balances come back as tuples (a list would not equal
    the wallet monitor's (free, locked) and record the same balance again)."""
    from domain.accounts import ExchangeAccount
    from domain.recording import Cause

    account_id = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    account = trading.get_account(account_id)
    cause = Cause(T0, "u1", "observe")
    account.observe_balance(cause, "USDT", Decimal("9850.5"), Decimal("149.5"))
    account.observe_balance(cause, "BTC", Decimal("0.75"), Decimal("0"))
    trading.append(account)
    forget(trading, account_id)
    replayed = trading.load_many([account_id], ExchangeAccount)[account_id]  # takes one
    stored = stored_snapshot(trading, account_id)
    assert type(stored) is snapshots.PackedSnapshot
    assert stored.originator_version == replayed.version
    true_state = state(replayed)
    replayed.observed = {"USDT": (Decimal("1"), Decimal("2"))}  # forged: is it used?
    forged = snapshots.PackedSnapshot.take(replayed)
    trading.snapshots.recorder.replace_events([trading.mapper.to_stored_event(forged)])
    forget(trading, account_id)
    loaded = trading.load_many([account_id], ExchangeAccount)[account_id]
    assert loaded.observed == {"USDT": (Decimal("1"), Decimal("2"))}
    trading.snapshots.recorder.replace_events([trading.mapper.to_stored_event(stored)])
    forget(trading, account_id)
    for again in (trading.load_many([account_id], ExchangeAccount)[account_id],
                  trading.load(account_id, ExchangeAccount)):
        assert state(again) == true_state
        assert again.observed == {"USDT": (Decimal("9850.5"), Decimal("149.5")),
                                  "BTC": (Decimal("0.75"), Decimal("0"))}
        assert all(type(pair) is tuple for pair in again.observed.values())
