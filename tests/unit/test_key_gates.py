"""The key gates' table (one entry per API key this process uses, its nonce shared by every
client of the key) does not grow for ever: a key whose clients are all gone (a key check's
client lives for one call; a typed-in wrong key is never used again) leaves the table once
unused for an hour. A key with a client still alive keeps its gate however long it waits,
so two clients of one key never sign from two different gates."""

from __future__ import annotations

import gc

from adapters.exchanges.ccxt_client import KEY_GATES, _KeyGates, open_client
from domain.ports import ApiCredentials

HOUR = 3600.0


class Client:
    """Stands for a ccxt client: the table holds it weakly."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gates(clock: Clock) -> _KeyGates:
    return _KeyGates(idle_seconds=HOUR, clock=clock)


def test_the_clients_of_one_key_share_its_gate_and_its_increasing_nonces():
    table = gates(Clock())
    first, second = Client(), Client()
    gate = table.of("kraken", False, None, "key-1", first)
    assert table.of("kraken", False, None, "key-1", second) is gate
    assert table.of("kraken", False, None, "key-2", second) is not gate
    assert [gate.nonce(5), gate.nonce(5), gate.nonce(3), gate.nonce(9)] == [5, 6, 7, 9]


def test_keys_whose_clients_are_gone_leave_the_table_after_an_hour_unused():
    clock = Clock()
    table = gates(clock)
    for n in range(1000):  # key checks: each client lives for one call
        table.of("binance", False, None, f"typed-in-{n}", Client())
    gc.collect()
    assert len(table) == 1000  # within the hour: a key back soon continues its nonces
    clock.now += HOUR
    assert len(table) == 0


def test_a_key_back_within_the_hour_continues_above_its_last_nonce():
    clock = Clock()
    table = gates(clock)
    table.of("kraken", False, None, "key", Client()).nonce(100)
    gc.collect()
    clock.now += HOUR - 1
    assert table.of("kraken", False, None, "key", Client()).nonce(50) == 101


def test_a_key_with_a_client_alive_keeps_its_gate_however_long_it_waits():
    clock = Clock()
    table = gates(clock)
    venue = Client()  # the live venue's client: lives as long as its market
    gate = table.of("kraken", False, None, "key", venue)
    gate.nonce(100)
    clock.now += 100 * HOUR
    table.of("kraken", False, None, "other", Client())  # opening a client prunes
    assert table.of("kraken", False, None, "key", Client()) is gate
    del venue
    gc.collect()
    clock.now += HOUR
    assert len(table) == 0


def test_a_real_ccxt_client_no_longer_holds_its_gate_once_dropped():
    client = open_client("binance", sandbox=False, credentials=ApiCredentials("k", "s"))
    gate = KEY_GATES.of("binance", False, None, "k", client)
    assert gate.in_use
    del client
    gc.collect()
    assert not gate.in_use
