"""The GraphQL answer cache shares work between concurrent requests without ever answering
from anything older than the request: one read of the read version serves every request
that arrived before it began, and one run of the resolvers serves every request for the
same answer at the same version."""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal

from api.graphql.remarking import FIGURES, Figure
from api.graphql.response_cache import FreshReads, GraphQLResponseCache
from application.market_tape import MARKS_READ


async def ask(cache: GraphQLResponseCache, body: bytes) -> bytes:
    """The answer's body to one ``POST /graphql`` of ``body`` (HTTP 200) by the same caller."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql",
             "headers": [(b"authorization", b"Bearer a.token")]}
    await cache(scope, receive, send)
    assert sent[0]["status"] == 200
    return b"".join(m.get("body", b"") for m in sent[1:])


def test_a_read_serves_the_requests_that_came_before_it_began_never_those_after():
    asyncio.run(_fresh_reads())


async def _fresh_reads() -> None:
    began: list[int] = []
    release = threading.Event()

    def read() -> int:
        began.append(len(began) + 1)
        release.wait(5)
        return len(began)  # which read this is

    reads = FreshReads(read)
    first = asyncio.create_task(reads.get())
    while not began:  # the first read is under way
        await asyncio.sleep(0.001)
    later = [asyncio.create_task(reads.get()) for _ in range(5)]
    await asyncio.sleep(0.01)
    release.set()

    assert await first == 1
    assert [await t for t in later] == [2] * 5  # one more read, begun after they asked
    assert reads.reads == 2


def test_a_failed_read_reaches_its_waiters_and_the_next_request_reads_again():
    asyncio.run(_failed_read())


async def _failed_read() -> None:
    outcomes = [OSError("down"), 7]

    def read() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    reads = FreshReads(read)
    try:
        await reads.get()
        raise AssertionError("the failure was not raised")
    except OSError:
        pass
    assert await reads.get() == 7


def test_reads_go_on_after_the_reader_thread_left_idle_ended_and_on_another_loop():
    reads = FreshReads(lambda: threading.current_thread().name)
    reads.reader.IDLE_SECONDS = 0.01
    assert asyncio.run(reads.get()) == "graphql-fresh-reads"  # off the event loop
    first = reads.reader.thread
    assert first is not None
    first.join(5)
    assert not first.is_alive()  # an app made and dropped leaves no thread behind

    assert asyncio.run(reads.get()) == "graphql-fresh-reads"  # a new loop, a new thread
    assert reads.reads == 2


def test_concurrent_requests_for_one_answer_run_the_resolvers_once():
    asyncio.run(_one_run_for_concurrent_requests())


async def _one_run_for_concurrent_requests() -> None:
    runs: list[bytes] = []
    proceed = asyncio.Event()

    async def app(scope, receive, send):
        runs.append((await receive())["body"])
        await proceed.wait()
        body = json.dumps({"data": {"bots": {"n": len(runs)}}}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    cache = GraphQLResponseCache(app, path="/graphql", snapshot=lambda: (1,),
                                 version_of=lambda snapshot, scope: snapshot,
                                 token_expiry=lambda token: 10,
                                 authenticate=lambda token: ("u", "user"), now=lambda: 0)
    body = json.dumps({"query": "{ bots { n } }"}).encode()

    async def request() -> bytes:
        return await ask(cache, body)

    first = asyncio.create_task(request())
    while not runs:
        await asyncio.sleep(0.001)
    others = [asyncio.create_task(request()) for _ in range(4)]
    await asyncio.sleep(0.05)
    proceed.set()

    answers = [await first, *[await t for t in others]]
    assert len(runs) == 1
    assert answers == [b'{"data": {"bots": {"n": 1}}}'] * 5


def test_requests_waiting_for_an_answer_get_it_re_marked_when_the_price_moved_meanwhile():
    asyncio.run(_remarked_for_waiters())


async def _remarked_for_waiters() -> None:
    runs: list[int] = []
    proceed = asyncio.Event()
    market = {"version": 1, "price": Decimal("10")}

    def mark() -> Decimal:  # as the market tape's last price: the read is noted
        MARKS_READ.get().add(("BTC/USDT", market["version"]))
        return market["price"]

    async def app(scope, receive, send):
        runs.append(1)
        FIGURES.get().append(Figure(("portfolio",), mark, (("BTC/USDT", 1),), (("value", str),)))
        body = json.dumps({"data": {"portfolio": {"value": str(mark())}}}).encode()
        await proceed.wait()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    cache = GraphQLResponseCache(app, path="/graphql", snapshot=lambda: (1,),
                                 version_of=lambda snapshot, scope: snapshot,
                                 mark_version=lambda pair: market["version"],
                                 token_expiry=lambda token: 10,
                                 authenticate=lambda token: ("u", "user"), now=lambda: 0)
    body = json.dumps({"query": "{ portfolio { value } }"}).encode()

    async def request() -> dict:
        return json.loads(await ask(cache, body))

    first = asyncio.create_task(request())
    while not runs:
        await asyncio.sleep(0.001)
    others = [asyncio.create_task(request()) for _ in range(4)]
    await asyncio.sleep(0.05)
    market.update(version=2, price=Decimal("12"))  # a new candle while it was being made
    proceed.set()

    assert (await first)["data"]["portfolio"]["value"] == "10"  # as it was made
    assert [(await t)["data"]["portfolio"]["value"] for t in others] == ["12"] * 4
    assert len(runs) == 1  # the waiters' answers were re-marked, not made again


def test_requests_with_nothing_written_since_a_read_began_share_it_and_the_last_read():
    asyncio.run(_shared_while_nothing_written())


async def _shared_while_nothing_written() -> None:
    """With a stamp of what was heard of writes (the api's LISTEN), a request that came
    while a read is under way shares it when nothing was heard since that read began, and
    is given the last read again when ``read_now`` says it still holds; a write heard of
    makes the next request wait for a read begun after it."""
    heard, began, kept = [0], [], [None]
    release = asyncio.Event()

    async def read_on_loop() -> int:
        began.append(heard[0])
        await release.wait()
        kept[0] = (heard[0], len(began)) if heard[0] == began[-1] else None
        return len(began)  # which read this is

    def read_now():
        return kept[0][1] if kept[0] is not None and kept[0][0] == heard[0] else None

    reads = FreshReads(lambda: None, read_on_loop, read_now, lambda: heard[0])
    first = asyncio.create_task(reads.get())
    while not began:
        await asyncio.sleep(0.001)
    sharing = [asyncio.create_task(reads.get()) for _ in range(3)]
    await asyncio.sleep(0.01)
    heard[0] += 1  # a NOTIFY: those asking from now on need a read begun after it
    after_write = [asyncio.create_task(reads.get()) for _ in range(2)]
    await asyncio.sleep(0.01)
    release.set()

    assert await first == 1
    assert [await t for t in sharing] == [1, 1, 1]  # nothing written since read 1 began
    assert [await t for t in after_write] == [2, 2]  # one more read, begun after the write
    assert await reads.get() == 2 and reads.reads == 2  # read 2 still holds: no read
