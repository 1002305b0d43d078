"""Benchmark: the processor time of one answered GraphQL request through the whole ASGI
stack of ``tradetape serve`` (the request's door, the answer cache, routing), in process,
without HTTP or a second client on the same cores.

    .venv/bin/python scripts/bench_graphql_hits.py [--requests 4000] [--concurrency 8]
        [--users 10] [--bots 5] [--profile FILE.prof] [--database URL] [--misses]
        [--open-deals] [--forget] [--query both|portfolio|bots] [--rate R]
        [--version-on-thread]

A server's app (``api.server.create_app``) on a fresh store (a temporary SQLite file, or
``--database``) gets ``--users`` verified users with ``--bots`` bots each; then
``portfolio`` and ``bots(first: 50)`` (the queries of bench_live's second client) are sent
``--requests`` times in all, round-robin over the users, ``--concurrency`` at a time,
straight to the ASGI app on one event loop. Each answer is checked (200, no ``errors``).

Printed (one JSON line): processor time per request (``time.process_time`` of the whole
process over the run, worker threads included, divided by the requests: the figure to
compare, alternating two versions several times on a shared machine); the median, p99 and
maximum of each request's duration (wall time: noisy when other processes share the
cores). 200 requests first warm the schema, the documents and the answers. Every answer
after the first of its kind is a cached one (nothing is appended meanwhile), so this is
the cost of the answer cache's hit path and what is in front of it, not of resolvers.
``--profile FILE`` writes a cProfile of the measured run; ``--query portfolio`` (or
``bots``) sends only that one. ``--rate R``: the requests are sent open loop, one every
1/R s whether or not the earlier ones were answered (as bench_live's second client sends
them; durations from when each was due), instead of ``--concurrency`` at a time: at an even
rate each request waits for a read version of its own, where back to back they share one.
``--version-on-thread``: that read on the reader thread (as before 2026-12-07), not awaited
on the event loop (PostgreSQL): the A/B of that change.

``--misses``: the answer cache off (``TRADETAPE_GRAPHQL_CACHE=off``), so every request runs
strawberry and its resolvers: the cost of a miss. ``--open-deals``: every bot started and
one live step run, so each has an open deal marked at the market's price (as in bench_live).
``--forget``: the answer cache on, its kept answers dropped before each request, so that
every request is a miss as the cache makes one after the caller's own event (the figures to
re-mark the answer noted, the answer kept), with the documents already parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from anyio import to_thread

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_api import BOTS, PORTFOLIO  # noqa: E402

PASSWORD = "Bench-password-1"
CONFIG = {"pair": "BTC/USDT", "baseOrderQuote": "20", "safetyOrderQuote": "10",
          "maxSafetyOrders": 2, "priceDeviationPct": "0.2", "safetyVolumeScale": "1.5",
          "safetyStepScale": "1.2", "takeProfitPct": "0.15"}
CREATE_BOT = """mutation($name: String!, $config: DcaConfigInput!) {
  createBot(name: $name, config: $config) { __typename ... on Bot { id } } }"""
START_BOT = """mutation($id: ID!) { startBot(id: $id) { __typename ... on BotErrors { code } } }"""


def open_app(url: str, users: int, cache: bool = True):
    from api.server import create_app
    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    os.environ.setdefault("TRADETAPE_BCRYPT_ROUNDS", "4")
    runtime = open_runtime(ServerSettings(database_url=url, speed=60, graphql_cache=cache))
    tokens = []
    for u in range(users):
        email = f"hits{u}@example.com"
        runtime.identity.register(email, PASSWORD, verified=True,
                                            display_name=f"hits{u}")
        tokens.append(runtime.identity.login(email, PASSWORD).access_token)
    runtime.refresh()
    return runtime, create_app(runtime, manage_runtime=False), tokens


async def create_bots(app, tokens: list[str], bots: int, start: bool = False) -> list[str]:
    """The bots' ids (started with ``start``)."""
    ids = []
    for token in tokens:
        for b in range(bots):
            body = json.dumps({"query": CREATE_BOT, "variables": {
                "name": f"bot{b}", "config": CONFIG}}).encode()
            status, answer = await one(app, body, token)
            assert status == 200 and b'"Bot"' in answer, answer
            if start:
                bot_id = json.loads(answer)["data"]["createBot"]["id"]
                ids.append(bot_id)
                body = json.dumps({"query": START_BOT, "variables": {"id": bot_id}}).encode()
                status, answer = await one(app, body, token)
                assert status == 200 and b'"Bot"' in answer, answer
    return ids


def open_deals(runtime, bot_ids: list[str]) -> None:
    """Live steps until every started bot is in a deal (its base order filled)."""
    from uuid import UUID

    for _ in range(120):
        runtime.loop.step()
        runtime.refresh()
        if all(runtime.trading.get_bot(UUID(b)).open_deal_id for b in bot_ids):
            return
        time.sleep(0.5)
    raise SystemExit("the bots did not open their deals")


def answer_cache(app):
    """The app's answer cache (``GraphQLResponseCache``), found behind its door (or in its
    middleware chain, built by the first request: the warm-up's, before 2026-12-07)."""
    from api.graphql.response_cache import GraphQLResponseCache

    layer = getattr(app, "door", None) or app.middleware_stack
    while layer is not None and not isinstance(layer, GraphQLResponseCache):
        layer = getattr(layer, "app", None)
    if layer is None:
        raise SystemExit("--forget: no answer cache (TRADETAPE_GRAPHQL_CACHE=off?)")
    return layer


class Lifespan:
    def __init__(self, app):
        self.app, self.queue, self.sent = app, asyncio.Queue(), asyncio.Queue()

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.app({"type": "lifespan", "asgi": {
            "version": "3.0"}}, self.queue.get, self.sent.put))
        await self.queue.put({"type": "lifespan.startup"})
        assert (await self.sent.get())["type"] == "lifespan.startup.complete"

    async def stop(self) -> None:
        await self.queue.put({"type": "lifespan.shutdown"})
        await self.sent.get()
        await self.task


async def one(app, body: bytes, token: str) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()),
                         (b"authorization", f"Bearer {token}".encode())]}
    sent = False
    status, chunks = 0, []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


QUERIES = {"both": (PORTFOLIO, BOTS), "portfolio": (PORTFOLIO,), "bots": (BOTS,)}


async def drive(app, tokens: list[str], requests: int, concurrency: int,
                queries: tuple[str, ...] = QUERIES["both"], forget: bool = False,
                rate: float = 0.0) -> dict:
    bodies = [json.dumps({"query": q, "variables": {}}).encode() for q in queries]
    n = len(bodies)
    work = [(bodies[i % n], tokens[(i // n) % len(tokens)]) for i in range(requests)]
    cache = answer_cache(app) if forget else None
    durations: list[float] = []
    failures: list[str] = []
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(work):
            body, token = work[position]
            position += 1
            began = time.perf_counter()
            if cache is not None:  # --forget: a miss, as after the caller's own event
                cache.answers.clear()
                cache.answers.weight = 0
            status, answer = await one(app, body, token)
            durations.append(time.perf_counter() - began)
            if status != 200 or b'"errors"' in answer:
                failures.append(f"{status} {answer[:200]!r}")

    async def timed(body: bytes, token: str, due: float) -> None:
        status, answer = await one(app, body, token)
        durations.append(time.perf_counter() - due)  # from when it was due, as bench_live
        if status != 200 or b'"errors"' in answer:
            failures.append(f"{status} {answer[:200]!r}")

    async def open_loop() -> None:  # --rate: each request sent when due, whatever waits
        began, sent = time.perf_counter(), []
        for i, (body, token) in enumerate(work):
            due = began + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent.append(asyncio.ensure_future(timed(body, token, due)))
        await asyncio.gather(*sent)

    cpu, wall = time.process_time(), time.perf_counter()
    if rate:
        await open_loop()
    else:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    durations.sort()
    return {"requests": requests, "cpu_us_per_request": round(cpu / requests * 1e6, 1),
            "wall_s": round(wall, 2), "p50_ms": round(durations[len(durations) // 2] * 1e3, 2),
            "p99_ms": round(durations[int(len(durations) * 0.99)] * 1e3, 2),
            "max_ms": round(durations[-1] * 1e3, 2), "failures": len(failures),
            "first_failure": failures[0] if failures else ""}


async def main_async(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/hits.sqlite"
        runtime, app, tokens = open_app(url, args.users, cache=not args.misses)
        life = Lifespan(app)
        await life.start()
        try:
            bot_ids = await create_bots(app, tokens, args.bots, start=args.open_deals)
            if args.open_deals:
                await to_thread.run_sync(open_deals, runtime, bot_ids)
            runtime.refresh()
            queries = QUERIES[args.query]
            await drive(app, tokens, 200, args.concurrency, queries,  # warm: schema, ...
                        args.forget)
            if args.version_on_thread:  # as before: the read version's statement on the
                answer_cache(app).snapshots.read_on_loop = None  # reader thread
            profile = cProfile.Profile() if args.profile else None
            if profile:
                profile.enable()
            figures = await drive(app, tokens, args.requests, args.concurrency, queries,
                                  args.forget, args.rate)
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
            print(json.dumps(figures))
        finally:
            await life.stop()
            runtime.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--bots", type=int, default=5)
    parser.add_argument("--database", default=None)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--forget", action="store_true")
    parser.add_argument("--query", choices=sorted(QUERIES), default="both")
    parser.add_argument("--open-deals", action="store_true")
    parser.add_argument("--version-on-thread", action="store_true",
                        help="the read version read on its thread, not awaited on the loop")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests/s sent open loop (0: --concurrency at a time)")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
