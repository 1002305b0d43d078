"""The bulk reads of a start (application/bulk_load.py) decode stored events and snapshots
through a faster object hook than the library's: they must give the very same events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SettableClock
from adapters.exchanges.paper import PaperExchange
from application import bulk_load, snapshots
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.replay import read_log
from application.snapshots import StampedSnapshot
from domain.dca import DcaConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def a_traded_log(url: str = "memory"):
    """A paper account, two bots and a market that fills safety orders and take profits."""
    clock, ids = SettableClock(T0), SequentialIds("bulk-decoding")
    trading = open_trading(url, clock=clock, ids=ids)
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
    for tp in ("0.5", "1.5"):
        config = DcaConfig.from_mapping({
            "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
            "max_safety_orders": 3, "price_deviation_pct": "0.5", "safety_volume_scale": "1.5",
            "safety_step_scale": "1.2", "take_profit_pct": tp})
        bot_id = trading.create_bot(owner_id="u1", name=f"tp {tp}", config=config,
                                    exchange_account_id=str(account))
        trading.start_bot(bot_id, actor="u1")
    paper = PaperTrading(trading, ids, lambda pair, q, b: PaperExchange(
        pair, quote_balance=q, base_balance=b))
    paper.resume()
    price = Decimal("100")
    for n, step in enumerate(("1", "0.99", "0.98", "0.985", "1.01", "1.02", "0.99")):
        o, c = price, Decimal("100") * Decimal(step)
        clock.current = T0 + timedelta(minutes=n + 1)
        paper.on_candle("BTC/USDT", int(clock.current.timestamp() * 1000) - 60_000, o,
                        max(o, c), min(o, c), c, clock.current)
        price = c
    return trading


def test_every_event_and_snapshot_decodes_as_the_library_decodes_it():
    trading = a_traded_log()
    fast = bulk_load._fast_mapper(trading)
    stored = [trading.recorder.select_events(n.originator_id, gt=n.originator_version - 1,
                                             lte=n.originator_version)[0]
              for n in read_log(trading)]
    kinds = {s.topic.rsplit(":", 1)[1].split(".")[0] for s in stored}
    assert {"Bot", "Deal", "Order", "ExchangeAccount"} <= kinds
    for item in stored:
        mine, theirs = fast.to_domain_event(item), trading.mapper.to_domain_event(item)
        assert type(mine) is type(theirs) and vars(mine) == vars(theirs)
        assert [type(v) for v in vars(mine).values()] == [type(v) for v in vars(theirs).values()]
    for aggregate_id in {s.originator_id for s in stored}:
        aggregate = trading.repository.get(aggregate_id)
        snapshot = trading.mapper.to_stored_event(StampedSnapshot.take(aggregate))
        mine, theirs = fast.to_domain_event(snapshot), trading.mapper.to_domain_event(snapshot)
        assert vars(mine.mutate(None)) == vars(theirs.mutate(None))
    trading.close()


def test_a_name_the_transcoder_does_not_know_fails_as_the_library_fails():
    trading = open_trading("memory")
    fast = bulk_load._fast_mapper(trading).transcoder
    odd = b'{"a":{"_type_":"no_such_type","_data_":1}}'
    with pytest.raises(Exception) as theirs:
        trading.mapper.transcoder.decode(odd)
    with pytest.raises(type(theirs.value)):
        fast.decode(odd)
    trading.close()


@given(st.uuids(), st.sampled_from(["hex", "upper", "short", "braces"]))
def test_a_uuid_read_from_its_hex_is_the_uuid(value: uuid.UUID, spelling: str):
    text = {"hex": value.hex, "upper": value.hex.upper(), "short": value.hex[1:],
            "braces": f"{{{value}}}"}[spelling]
    try:
        expected = uuid.UUID(text)
    except ValueError:
        with pytest.raises(ValueError):
            snapshots.uuid_of_hex(text)
        return
    made = snapshots.uuid_of_hex(text)
    assert made == expected and hash(made) == hash(expected) and str(made) == str(expected)
    assert made.version == expected.version and made.is_safe == expected.is_safe


def _transcodings():
    trading = open_trading("memory")
    names = dict(trading.mapper.transcoder.names)
    trading.close()
    return names


TRANSCODINGS = _transcodings()
ENUM_NAMES = sorted(n for n in TRANSCODINGS if n.startswith("enum:"))


def _same_outcome(name: str, data) -> None:
    """The bulk decoder of ``name`` gives what the library's transcoding gives (the same
    value, of the same type), or refuses what it refuses."""
    transcoding = TRANSCODINGS[name]
    direct = bulk_load._direct_decoder(transcoding)
    try:
        expected = transcoding.decode(data)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 (any: the library's then says why)
            direct(data)
        return
    got = direct(data)
    assert type(got) is type(expected)
    if isinstance(expected, Decimal):  # the same digits and exponent (NaN too)
        assert str(got) == str(expected)
    else:
        assert got == expected


@given(st.sampled_from(ENUM_NAMES), st.data())
def test_an_enum_is_decoded_to_the_member_the_library_gives(name, data):
    members = [m.value for m in TRANSCODINGS[name].type]
    value = data.draw(st.one_of(st.sampled_from(members), st.text(max_size=12),
                                st.integers(), st.none(), st.lists(st.integers(), max_size=2)))
    _same_outcome(name, value)


@given(st.one_of(st.decimals(allow_nan=True).map(str), st.text(max_size=12),
                 st.sampled_from(["1E+3", "-0", "0.10", "1e-30", " 5", "sNaN", "Infinity"])))
def test_a_decimal_is_decoded_as_the_library_decodes_it(text):
    _same_outcome("decimal_str", text)


@given(st.one_of(st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
                 st.datetimes().map(datetime.isoformat), st.text(max_size=30), st.integers()))
def test_a_time_is_decoded_as_the_library_decodes_it(text):
    _same_outcome("datetime_iso", text)
