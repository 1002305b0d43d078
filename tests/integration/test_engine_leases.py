"""Engine workers on one PostgreSQL database own bots by lease: a worker that joins gets its
share, a killed worker's bots are taken at once, a hung worker's when its leases expire, and
a worker that lost a lease can never write for that bot again (its append is refused in the
transaction that would have stored it)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_engine_leases, open_trading
from application.leased_paper import LeasedPaperTrading
from application.replay import read_log
from application.settings import parse_database_url
from domain.dca import DcaConfig

BOT = DcaConfig.from_mapping({
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 2, "price_deviation_pct": "1", "safety_volume_scale": "1",
    "safety_step_scale": "1", "take_profit_pct": "1"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PRICE = Decimal("50000")


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


def seed_bots(url: str, accounts: int, per_account: int = 1) -> list:
    trading = open_trading(url, clock=SteppingClock(T0, timedelta(seconds=1)),
                           ids=SequentialIds("seed"))
    bots = []
    for a in range(accounts):
        owner = f"user{a}"
        account = trading.open_account(owner_id=owner, exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("10000"), actor=owner)
        for b in range(per_account):
            bot_id = trading.create_bot(owner_id=owner, name=f"bot {b}", config=BOT,
                                        exchange_account_id=str(account))
            trading.start_bot(bot_id, actor=owner)
            bots.append(bot_id)
    trading.close()
    return bots


class Worker:
    """One engine worker as ``serve --role engine`` wires it, driven tick by tick."""

    def __init__(self, url: str, name: str, seconds: float, book=None):
        """``book``: the view store whose paper book the worker restores from (as a
        server's does), else none: it reads the log."""
        self.trading = open_trading(url, clock=SteppingClock(T0, timedelta(seconds=1)),
                                    ids=SequentialIds(name))
        self.paper = LeasedPaperTrading(self.trading, self.trading.ids, venue)
        if book is not None:
            from projections.paper_book import BookAtHead

            self.paper.restart_book = BookAtHead(self.trading, book)
        self.leases = open_engine_leases(parse_database_url(url), self.trading, self.paper,
                                         seconds=seconds, worker=name)
        self.store = self.leases.store
        self.store.join(seconds)

    def candle(self, price: Decimal = PRICE) -> int:
        return self.paper.on_candle("BTC/USDT", 0, price, price, price, price,
                                    self.trading.clock.now())

    def close(self) -> None:
        self.store.leave()
        self.trading.close()


def deals_opened(url: str) -> Counter:
    trading = open_trading(url)
    try:
        return Counter(trading.mapper.to_domain_event(n).bot_id for n in read_log(trading)
                       if n.topic.endswith("Deal.Opened"))
    finally:
        trading.close()


def client_ids(url: str) -> Counter:
    trading = open_trading(url)
    try:
        return Counter(trading.mapper.to_domain_event(n).client_order_id
                       for n in read_log(trading) if n.topic.endswith("Order.Submitted"))
    finally:
        trading.close()


def test_a_worker_that_joins_gets_its_share_and_no_bot_is_traded_twice(postgres_url):
    bots = seed_bots(postgres_url, accounts=6)
    first = Worker(postgres_url, "first", seconds=30)
    first.leases.tick()
    assert set(first.leases.held) == set(bots) == first.paper.bot_ids
    second = Worker(postgres_url, "second", seconds=30)
    second.leases.tick()  # all six held by a live worker: nothing free yet
    assert second.paper.bot_ids == set()
    first.leases.tick()  # over its share of three: lets three go
    second.leases.tick()  # and takes them
    assert len(first.paper.bot_ids) == len(second.paper.bot_ids) == 3
    assert first.paper.bot_ids | second.paper.bot_ids == set(bots)
    # both trade a candle: each bot opens exactly one deal, every client id once
    first.candle()
    second.candle()
    assert deals_opened(postgres_url) == Counter(dict.fromkeys(bots, 1))
    assert max(client_ids(postgres_url).values()) == 1
    first.close()
    second.close()


def sharing(url: str, first: str, second: str, seconds: float) -> tuple[Worker, Worker]:
    """Two workers that each took their share: the first took every bot, the second joined,
    the first let its excess go and the second took it."""
    one = Worker(url, first, seconds=seconds)
    one.leases.tick()
    two = Worker(url, second, seconds=seconds)
    two.leases.tick()
    one.leases.tick()
    two.leases.tick()
    return one, two


def test_the_bots_of_one_account_move_together(postgres_url):
    bots = seed_bots(postgres_url, accounts=2, per_account=2)
    first, second = sharing(postgres_url, "first", "second", seconds=30)
    owned = [first.paper.bot_ids, second.paper.bot_ids]
    assert sorted(map(len, owned)) == [2, 2] and owned[0] | owned[1] == set(bots)
    assert {tuple(sorted(bots[:2])), tuple(sorted(bots[2:]))} == {
        tuple(sorted(o)) for o in owned}
    first.close()
    second.close()


def doomed_and_heir(url: str) -> tuple[list, Worker, Worker]:
    """Three bots whose deals a worker opened (their orders rest with it), and a second
    worker that joined after it (holding none)."""
    bots = seed_bots(url, accounts=3)
    doomed = Worker(url, "doomed", seconds=60)
    doomed.leases.tick()
    doomed.candle()  # deals open, their orders rest with this worker
    heir = Worker(url, "heir", seconds=60)
    heir.leases.tick()
    return bots, doomed, heir


def test_a_killed_workers_bots_are_taken_at_once(postgres_url):
    bots, doomed, heir = doomed_and_heir(postgres_url)
    assert heir.paper.bot_ids == set()  # a live worker holds them all
    killed(doomed, heir)  # as with kill -9: the database unlocks it
    heir.leases.tick()  # long before the 60 s leases expire
    assert heir.paper.bot_ids == set(bots)
    # the heir carries the open deals on: no deal opened again, no client id used twice
    heir.candle(PRICE * Decimal("0.985"))  # the first safety orders fill
    assert deals_opened(postgres_url) == Counter(dict.fromkeys(bots, 1))
    assert max(client_ids(postgres_url).values()) == 1
    heir.close()
    doomed.trading.close()


def test_a_killed_workers_bots_are_taken_from_the_paper_book_with_what_rests_for_them(
        postgres_url, monkeypatch):
    """As above, the heir restoring from the paper book (its tables caught up halfway, the
    rest read from the log): it carries the deals on as one that read the log would."""
    from projections.paper_book import PaperBook
    from tests.projection_stubs import catch_up, view_store

    bots = seed_bots(postgres_url, accounts=3)
    store = view_store(postgres_url)
    try:
        doomed = Worker(postgres_url, "doomed", seconds=60)
        doomed.leases.tick()
        catch_up(doomed.trading, store, [PaperBook])  # the book stops before the deals
        doomed.candle()  # deals open, their orders rest with this worker
        heir = Worker(postgres_url, "heir", seconds=60, book=store)
        heir.leases.tick()
        assert heir.paper.bot_ids == set()
        killed(doomed, heir)
        from application import paper_log

        def no_scan(*_args, **_kwargs):
            raise AssertionError("the heir reads orders and fills from the book")

        monkeypatch.setattr(paper_log, "read_log", no_scan)
        heir.leases.tick()
        assert heir.paper.bot_ids == set(bots)
        monkeypatch.undo()
        resting = {o.client_order_id for m in heir.paper._markets.values()
                   for o in m.venue.fetch_open_orders()}
        assert resting and resting == {o.client_order_id for m in doomed.paper._markets.values()
                                       for o in m.venue.fetch_open_orders()}
        heir.candle(PRICE * Decimal("0.985"))  # the first safety orders fill
        assert deals_opened(postgres_url) == Counter(dict.fromkeys(bots, 1))
        assert max(client_ids(postgres_url).values()) == 1
        heir.close()
        doomed.trading.close()
    finally:
        store.close()


def test_a_hung_worker_loses_its_leases_when_they_expire_and_cannot_write_after(
        postgres_url):
    bots = seed_bots(postgres_url, accounts=2)
    # 3 s, not 1: opening the second worker below took over a second on a loaded machine,
    # and the stale worker's leases expired before the fresh one could see them held
    stale = Worker(postgres_url, "stale", seconds=3)
    stale.leases.tick()
    assert stale.paper.bot_ids == set(bots)
    fresh = Worker(postgres_url, "fresh", seconds=30)  # stays alive while the test runs
    fresh.leases.tick()
    assert fresh.paper.bot_ids == set()  # held, not expired
    time.sleep(3.3)  # the stale worker did not renew: its leases (and its row) expire
    fresh.leases.tick()
    assert fresh.paper.bot_ids == set(bots)
    before = deals_opened(postgres_url)
    # The stale worker wakes up and trades a candle: its appends are refused (LEASE_LOST)
    assert stale.candle() == 0
    assert deals_opened(postgres_url) == before == Counter()
    stale.leases.tick()  # and it drops the bots
    assert stale.paper.bot_ids == set() and stale.leases.held == {}
    fresh.candle()
    assert deals_opened(postgres_url) == Counter(dict.fromkeys(bots, 1))
    fresh.close()
    stale.close()


def test_a_deal_closed_in_another_process_is_sold_by_the_worker_that_holds_the_bot(
        postgres_url):
    from application.leased_paper import ApiPaperTrading
    from domain.deals import DealStatus

    (bot_id,) = seed_bots(postgres_url, accounts=1)
    engine = Worker(postgres_url, "engine", seconds=1.5)
    engine.leases.start()  # ticks on its thread, as in a server
    engine.candle()  # the deal opens
    api_trading = open_trading(postgres_url)
    api = ApiPaperTrading(api_trading, api_trading.ids, venue)
    try:
        deal_id = api_trading.get_bot(bot_id).open_deal_id
        assert deal_id is not None
        assert api.close_deal(bot_id, actor="user0") == deal_id  # waits for the engine
        deal = api_trading.get_deal(deal_id)
        assert deal.status is DealStatus.CLOSED and str(deal.close_reason) == "manual"
        closed = [n for n in read_log(api_trading) if n.topic.endswith("Deal.Closed")]
        assert [api_trading.mapper.to_domain_event(n).actor for n in closed] == ["user0"]
    finally:
        engine.leases.stop()
        engine.trading.close()
        api_trading.close()


def test_a_deal_opened_now_for_a_bot_another_worker_holds_is_refused_by_name(postgres_url):
    import pytest

    from domain.errors import DomainError

    (bot_id,) = seed_bots(postgres_url, accounts=1)
    holder = Worker(postgres_url, "holder", seconds=30)
    holder.leases.tick()
    other = Worker(postgres_url, "other", seconds=30)
    other.leases.tick()
    with pytest.raises(DomainError) as refused:
        other.paper.start_deal(bot_id, actor="webhook:tv")
    assert refused.value.code == "ENGINE_ELSEWHERE"
    assert other.paper.bot_ids == set() and deals_opened(postgres_url) == Counter()
    holder.close()
    other.close()


def version_gaps(url: str) -> list:
    """Aggregates whose stored versions are not 1, 2, 3, … without a hole."""
    trading = open_trading(url)
    try:
        versions: dict = {}
        for n in read_log(trading):
            versions.setdefault(n.originator_id, []).append(n.originator_version)
        return [oid for oid, v in versions.items() if sorted(v) != list(range(1, len(v) + 1))]
    finally:
        trading.close()


def expire_lease(url: str, bot_id) -> None:
    """The lease of ``bot_id`` expired now, whoever held it."""
    import psycopg

    from application.settings import _connect_kwargs

    database = parse_database_url(url)
    schema = database.env["POSTGRES_SCHEMA"]
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".engine_leases SET expires_at = now() '
                     "WHERE bot_id = %s", (bot_id,))


def test_a_refused_append_leaves_no_unsaved_step_behind_for_the_bots_still_held(
        postgres_url):
    """One candle's append holds every bot's step: when one bot's lease was taken meanwhile
    the whole append is refused, so the bots still held must decide that candle again from
    the log, not carry on from a step that was never stored (a gap in their versions), and
    at once: the candle is theirs too (it was skipped for them)."""


    taken, kept = seed_bots(postgres_url, accounts=2)
    worker = Worker(postgres_url, "worker", seconds=30)
    worker.leases.tick()
    assert worker.paper.bot_ids == {taken, kept}
    expire_lease(postgres_url, taken)  # as if its renewal came too late
    other = Worker(postgres_url, "other", seconds=30)
    assert set(other.store.acquire([taken], 30)) == {taken}
    # both bots' deals in one append: refused, then the kept bot's alone
    worker.candle()
    assert deals_opened(postgres_url) == Counter({kept: 1})
    worker.leases.tick()  # drops the bot it lost
    assert worker.paper.bot_ids == {kept}
    worker.candle(PRICE * Decimal("0.985"))  # the kept bot's first safety order fills
    assert deals_opened(postgres_url) == Counter({kept: 1})
    assert version_gaps(postgres_url) == []
    assert max(client_ids(postgres_url).values()) == 1
    worker.close()
    other.close()


def test_a_worker_that_dies_while_another_ticks_costs_the_survivor_none_of_its_own_bots(
        postgres_url):
    """The survivor counted two live workers at the start of its tick, then found the
    other's bots orphaned: it takes them and keeps its own (it used to give half of all
    away at once by the stale count, and take them back at its next tick)."""
    bots = seed_bots(postgres_url, accounts=6)
    survivor, doomed = sharing(postgres_url, "survivor", "doomed", seconds=60)
    assert len(survivor.paper.bot_ids) == len(doomed.paper.bot_ids) == 3
    wanted = survivor.leases.wanted

    def killed_meanwhile():  # after the survivor counted the workers, before it adopts
        killed(doomed, survivor)  # as with kill -9: the database unlocks it
        return wanted()

    survivor.leases.wanted = killed_meanwhile
    moved = []
    release = survivor.store.release
    survivor.store.release = lambda bot_ids: (moved.extend(bot_ids), release(bot_ids))[1]
    survivor.leases.tick()
    assert survivor.paper.bot_ids == set(bots) and moved == []
    survivor.leases.wanted = wanted
    survivor.leases.tick()
    assert survivor.paper.bot_ids == set(bots) and moved == []
    survivor.close()
    doomed.trading.close()


def leased_to(url: str, worker: str) -> set:
    """The bots whose lease row names ``worker``, read from the table itself."""
    import psycopg

    from application.settings import _connect_kwargs

    database = parse_database_url(url)
    schema = database.env["POSTGRES_SCHEMA"]
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        rows = conn.execute(f'SELECT bot_id FROM "{schema}".engine_leases WHERE worker = %s',
                            (worker,)).fetchall()
    return {bot_id for (bot_id,) in rows}


def killed(worker: Worker, heir: Worker) -> None:
    """``worker`` killed with -9 (its connection gone): returns once the database dropped its
    session lock, as the heir sees it (a moment after the connection closes)."""
    held = list(worker.leases.held)
    worker.store._drop()
    deadline = time.monotonic() + 10
    while heir.store.orphans(held) != set(held) and time.monotonic() < deadline:
        time.sleep(0.02)


def once(owner, name: str, error: Exception) -> None:
    """``owner.name`` (a method of its class) raises ``error`` the next time it is called,
    then works again."""

    def failing(*_args, **_kwargs):
        delattr(owner, name)  # the class's method again
        raise error

    setattr(owner, name, failing)


def heir_of_killed(url: str) -> tuple[list, Worker, Worker]:
    """Bots with open deals, their worker killed, and the heir that will take them."""
    bots = seed_bots(url, accounts=3)
    doomed = Worker(url, "doomed", seconds=60)
    doomed.leases.tick()
    doomed.candle()  # deals open: the heir reads the log's orders again to take them
    heir = Worker(url, "heir", seconds=60)
    heir.leases.tick()
    killed(doomed, heir)
    return bots, doomed, heir


def failing_tick(worker: Worker) -> None:
    import contextlib

    with contextlib.suppress(OSError):  # a tick that raises is reported by its thread,
        worker.leases.tick()  # and the next one runs


def trades_them_all(url: str, heir: Worker, bots: list) -> None:
    heir.leases.tick()
    assert heir.paper.bot_ids == set(bots) == leased_to(url, "heir")
    heir.candle(PRICE * Decimal("0.985"))  # the heir trades them: first safety orders fill
    assert deals_opened(url) == Counter(dict.fromkeys(bots, 1))
    assert max(client_ids(url).values()) == 1


def test_a_take_whose_following_fails_leaves_no_bot_leased_but_not_traded(postgres_url):
    """The heir leases a killed worker's bots, then following them raises (the database
    blinks while it reads the log's orders again): the leases are let go at once, so the
    next tick takes the bots and trades them (they used to stay leased to the heir, renewed
    by it for good, and never traded by anyone)."""
    bots, doomed, heir = heir_of_killed(postgres_url)
    once(heir.paper, "refresh_index", OSError("server closed the connection unexpectedly"))
    failing_tick(heir)
    assert "refresh_index" not in vars(heir.paper)  # the take did get that far
    assert leased_to(postgres_url, "heir") == set(heir.leases.held) == heir.paper.bot_ids
    trades_them_all(postgres_url, heir, bots)
    heir.close()
    doomed.trading.close()


def test_leases_a_failed_take_could_not_let_go_are_let_go_at_the_next_tick(postgres_url):
    """As above, loading the bots fails and so does releasing their leases (the database
    away a moment): the worker trades none of them, and its next tick lets those leases go
    and takes the bots again (they used to stay leased to it, never traded)."""
    bots, doomed, heir = heir_of_killed(postgres_url)
    once(heir.paper, "follow_many", OSError("server closed the connection unexpectedly"))
    once(heir.store, "release", OSError("server closed the connection unexpectedly"))
    failing_tick(heir)
    assert "follow_many" not in vars(heir.paper) and "release" not in vars(heir.store)
    assert heir.leases.held == {} and heir.paper.bot_ids == set()
    trades_them_all(postgres_url, heir, bots)
    heir.close()
    doomed.trading.close()


def test_a_worker_that_has_not_finished_its_first_take_is_given_no_bots(postgres_url):
    """Bots let go to a worker still busy with its first take would wait for it, past the
    lease time: the others give it its share only once it is ready."""
    bots = seed_bots(postgres_url, accounts=6)
    first = Worker(postgres_url, "first", seconds=30)
    first.leases.tick()
    moved = []
    release = first.store.release
    first.store.release = lambda bot_ids: (moved.extend(bot_ids), release(bot_ids))[1]
    second = Worker(postgres_url, "second", seconds=30)  # joined: alive, not ready
    first.leases.tick()
    assert first.paper.bot_ids == set(bots) and moved == []
    assert leased_to(postgres_url, "first") == set(bots)
    second.leases.tick()  # its first take: nothing free, and now it is ready
    assert second.paper.bot_ids == set()
    first.leases.tick()  # gives the ready worker its share
    assert len(moved) == 3 and first.paper.bot_ids == set(bots) - set(moved)
    second.leases.tick()
    assert second.paper.bot_ids == set(moved) == leased_to(postgres_url, "second")
    first.close()
    second.close()


def test_bots_let_go_go_to_a_ready_worker_and_are_taken_within_the_lease_time(postgres_url):
    """Two workers ticking on their threads, as in servers; the second's first take lasts
    longer than a lease (a loaded machine). Every bot the first lets go is traded by the
    second within the lease time of being let go, and every bot ends up traded."""
    import threading

    seconds = 3.0
    bots = seed_bots(postgres_url, accounts=6)
    first = Worker(postgres_url, "first", seconds=seconds)
    first.leases.start()
    first.leases.started()
    assert first.paper.bot_ids == set(bots)
    deadline = time.monotonic() + seconds * 3
    while not first.leases.ready and time.monotonic() < deadline:
        time.sleep(0.02)
    let_go: dict = {}
    release = first.store.release

    def timed_release(bot_ids):
        let_go.update(dict.fromkeys(bot_ids, time.monotonic()))
        return release(bot_ids)

    first.store.release = timed_release
    second = Worker(postgres_url, "second", seconds=seconds)
    wanted = second.leases.wanted

    def slow_first_take():
        second.leases.wanted = wanted
        time.sleep(seconds * 5 / 3)
        return wanted()

    second.leases.wanted = slow_first_take
    def start():  # as a server starts its worker
        second.leases.start()
        second.leases.started()

    starting = threading.Thread(target=start)
    starting.start()
    taken: dict = {}
    deadline = time.monotonic() + seconds * 6
    while time.monotonic() < deadline and (len(taken) < 3 or starting.is_alive()):
        with second.paper.lock:  # traded by it: leased and followed
            trading = second.paper.bot_ids
        for bot_id in trading:
            taken.setdefault(bot_id, time.monotonic())
        time.sleep(0.02)
    starting.join()
    try:
        assert len(let_go) == 3 and set(taken) == set(let_go)
        late = {b: round(taken[b] - let_go[b], 2) for b in let_go if taken[b] - let_go[b]
                > seconds}
        assert late == {}
        assert first.paper.bot_ids | second.paper.bot_ids == set(bots)
        assert len(first.paper.bot_ids) == len(second.paper.bot_ids) == 3
    finally:
        first.leases.stop()
        second.leases.stop()
        first.trading.close()
        second.trading.close()


def test_a_worker_whose_server_is_still_starting_is_given_no_bots(postgres_url):
    """Its first take done but its server not started yet (positions, the wallet round,
    the live loop): its ticks still compete with that work, so it is given nothing until
    the server says it has started."""
    bots = seed_bots(postgres_url, accounts=4)
    first = Worker(postgres_url, "first", seconds=30)
    first.leases.tick()
    second = Worker(postgres_url, "second", seconds=30)
    second.leases.start()  # its first take made, ticking on its thread
    try:
        first.leases.tick()
        assert first.paper.bot_ids == set(bots) and second.paper.bot_ids == set()
        second.leases.started()
        deadline = time.monotonic() + 10
        while not second.leases.ready and time.monotonic() < deadline:
            time.sleep(0.02)
        first.leases.tick()  # gives the ready worker its share, which it takes
        while len(second.paper.bot_ids) < 2 and time.monotonic() < deadline:
            second.leases.wake()
            time.sleep(0.05)
        assert len(first.paper.bot_ids) == len(second.paper.bot_ids) == 2
    finally:
        second.leases.stop()
        second.trading.close()
        first.close()


def filled(url: str) -> Counter:
    """Fills in the log, by order purpose (base, safety, take profit...)."""
    trading = open_trading(url)
    try:
        purposes, fills = {}, Counter()
        for n in read_log(trading):  # (an order's submission comes before its fills)
            if n.topic.endswith("Order.Submitted"):
                purposes[n.originator_id] = trading.mapper.to_domain_event(n).purpose.value
            elif n.topic.endswith("Order.Filled"):
                fills[purposes[n.originator_id]] += 1
        return fills
    finally:
        trading.close()


def test_a_lease_tick_that_changes_nothing_leaves_every_band_as_it_was(postgres_url,
                                                                       monkeypatch):
    """The lease manager holds the engines' lock at every tick (a quarter lease). A tick that
    follows and drops nobody moves no market's levels: the next candle measures no band
    again (at 10,000 bots, every market's: ~30 ms of a quiet candle's ~32). Bots it adopts
    are traded at the next candle all the same: their markets' bands are measured then."""
    from application import paper_trading

    bots, doomed, heir = doomed_and_heir(postgres_url)
    heir.candle()  # a step of its own (nothing to trade): the lock's count known since
    measured = []
    real_band = paper_trading.market_band
    monkeypatch.setattr(paper_trading, "market_band",
                        lambda market: measured.append(market) or real_band(market))
    killed(doomed, heir)
    heir.leases.tick()  # adopts the dead worker's three bots, each on its own market
    assert heir.paper.bot_ids == set(bots)
    heir.candle(PRICE * Decimal("0.985"))  # reaches the first safety order of each deal
    assert len(measured) == 3
    assert filled(postgres_url) == Counter({"base": 3, "safety": 3})
    heir.candle(PRICE * Decimal("0.985"))  # (measures the markets the last one stepped)
    heir.leases.tick()
    heir.leases.tick()  # nothing to adopt, give up or take
    measured.clear()
    heir.candle(PRICE * Decimal("0.985"))  # reaches no level: nothing to measure or walk
    assert measured == []
    heir.candle(PRICE * Decimal("1.02"))  # the take profits: the bands were right
    assert filled(postgres_url)["take_profit"] == 3
    heir.close()
    doomed.trading.close()


def test_a_lease_lost_in_an_append_sent_ahead_keeps_what_went_before_and_steps_the_rest(
        postgres_url):
    """A candle's markets stored one append each as they are decided (appends sent ahead):
    the third's bot was taken by another worker meanwhile. The two appends before it stay
    stored; it and the markets decided after it go on from the log and step the candle
    again at once, every bot still held opening its one deal, no version skipped."""

    from application.appends_ahead import AppendsAhead
    from tests.integration.test_appends_ahead import before_inserts

    bots = seed_bots(postgres_url, accounts=5)
    worker = Worker(postgres_url, "worker", seconds=30)
    worker.paper.appends_ahead = AppendsAhead(1)  # each market's step its own append
    worker.leases.tick()
    assert worker.paper.bot_ids == set(bots)
    # the markets in the order a candle steps them (one bot each)
    (taken,) = list(worker.paper._markets.values())[2].engines
    expire_lease(postgres_url, taken)  # as if its renewal came too late
    other = Worker(postgres_url, "other", seconds=30)
    assert set(other.store.acquire([taken], 30)) == {taken}
    appends = []
    before_inserts(worker.trading.recorder, lambda stored: appends.append(len(stored)))
    worker.candle()
    assert len(appends) >= 4, "the candle went in several appends, one refused"
    assert deals_opened(postgres_url) == Counter(dict.fromkeys(set(bots) - {taken}, 1))
    worker.leases.tick()  # drops the bot it lost
    assert worker.paper.bot_ids == set(bots) - {taken}
    worker.candle(PRICE * Decimal("0.985"))  # the first safety orders fill
    assert deals_opened(postgres_url) == Counter(dict.fromkeys(set(bots) - {taken}, 1))
    assert version_gaps(postgres_url) == []
    assert max(client_ids(postgres_url).values()) == 1
    worker.close()
    other.close()
