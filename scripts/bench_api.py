"""Benchmark: the GraphQL API under load, beside a plain FastAPI JSON endpoint reading the
same rows.

    .venv/bin/python scripts/bench_api.py \
        [--database postgresql://postgres@127.0.0.1:5432/test?schema=bench_api] \
        [--users 10] [--bots 1000] [--deals 100000] [--rate 500] [--seconds 10] [--reuse]

1. A fresh schema (dropped first, unless ``--reuse`` finds the data already there) gets
   ``--users`` verified users, each with ``--bots / --users`` paper bots, and ``--deals`` deals
   spread evenly over the bots: every deal is made by the real DcaEngine on a paper venue over
   synthetic candles (a base order, one safety order that every fourth deal fills, a take
   profit), its events appended through the Trading application in transactions of a few
   thousand events. Then ``tradetape projections rebuild`` builds the read models from the
   log. The bots end stopped, every deal closed, so the server's live loop stays idle.
2. ``tradetape serve`` starts on a free loopback port (a subprocess), twice, one after the
   other: as configured by default (read-only queries answered from the cache keyed by the
   read version, ``api/graphql/response_cache.py``), then with
   ``TRADETAPE_GRAPHQL_CACHE=off`` (every query resolved afresh). Beside them, a plain
   FastAPI app (this script with ``--plain-app``): no GraphQL and no authentication, one
   psycopg connection behind a lock (as the GraphQL read side), the same SELECTs on the same
   projection tables, JSON out.
3. An open-loop client (asyncio, keep-alive connections, requests sent on a fixed schedule
   whether or not earlier ones were answered) sends ``--rate`` requests/s for ``--seconds``
   to each endpoint in turn: ``portfolio`` and ``bots(first: 50)`` (each bot with its P/L),
   round-robin over the users. A latency runs from the request's scheduled time to its
   response, so a server that falls behind shows it. Every response is checked (HTTP 200, no
   GraphQL ``errors``).

The client is a small HTTP/1.1 client on asyncio streams rather than httpx: on a 2-core
machine, at 500 requests/s, httpx's own per-request cost (~1 ms of CPU) would be a large
part of what is measured, on the core the server needs.
4. Then both servers once more while other users trade (issue 14): a child process
   (``scripts/bench_writers.py``) appends ``--writers-rate`` events/s (default 200; 0 skips
   this) to the same database through the engine, from users the clients are not. It is an
   engine worker holding its bots' leases (the server, which leases every free running
   bot, leaves them to it). It prints its progress every second: the events/s it appended
   during each measured window are printed (the whole stretch, and per goal line), a goal
   with writers is met only if they appended at least 95% of ``--writers-rate`` meanwhile,
   and the benchmark stops with an error if they died. Their figures are printed beside
   the quiet ones; ``--writers-only`` runs only these (to compare two versions).

Goal (issues 5 and 14): both GraphQL queries hold 500 requests/s with p99 under 50 ms, also
while others trade.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test?schema=bench_api"
SECRET_KEY = "bench-api-secret-key-0123456789abcdefghij"
SLOW_S = 0.05  # an answer slower than this is listed with when it was due (Result.slow)
PASSWORD = "Bench-password-1"
TRADETAPE = Path(sys.executable).with_name("tradetape")

PORTFOLIO = (
    "{ portfolio { realizedPnl unrealizedPnl fees dealsClosed dealsOpen wins losses "
    "winRate profitFactor maxDrawdown capitalCommitted roi "
    "balances { accountId asset free locked total updatedAt } } }"
)
BOTS = (
    "{ bots(first: 50) { edges { cursor node { id name status mode pair dealsOpened "
    "dealsClosed openDealId createdAt pnl { realizedPnl unrealizedPnl fees dealsClosed "
    "winRate maxDrawdown } } } pageInfo { hasNextPage endCursor } } }"
)


# --- 1. the data ------------------------------------------------------------------------------


def drop(url: str) -> None:
    from application.settings import _connect_kwargs, parse_database_url

    database = parse_database_url(url)
    if database.kind == "postgres":
        import psycopg

        schema = database.env.get("POSTGRES_SCHEMA", "public")
        with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    elif database.kind == "sqlite":
        for path in database.sqlite_files:  # the events and the read models
            path.unlink(missing_ok=True)


def candles(k: int, deals: int) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
    """Two candles a deal: one closing where the deal opens, then one that reaches its take
    profit (every fourth deal first dips through its safety order)."""
    price = Decimal(100) + k % 7
    rows = []
    for d in range(deals):
        low = price * (Decimal("0.985") if d % 4 == 0 else Decimal("0.999"))
        rows.append((price, price * Decimal("1.002"), low, price))
        rows.append((price, price * Decimal("1.02"), price * Decimal("0.999"), price))
    return rows


def generate(url: str, users: int, bots: int, deals: int) -> tuple[int, float]:
    """Users, bots and deals through the domain; returns (events appended, seconds)."""
    from datetime import UTC, datetime, timedelta

    from eventsourcing.application import ProcessingEvent

    from adapters.clock import SequentialIds
    from adapters.exchanges.paper import PaperExchange
    from application.bootstrap import open_identity, open_trading
    from application.engine import DcaEngine
    from domain.bots import Bot
    from domain.recording import ENGINE, Cause
    from scripts.bench_writers import bench_config

    started = time.perf_counter()
    trading = open_trading(url)
    identity = open_identity(url, trading=trading, secret_key=SECRET_KEY, bcrypt_rounds=4)
    owners = []
    for u in range(users):
        user_id = identity.register(email(u), PASSWORD, verified=True, actor="system")
        owners.append((str(user_id), str(identity.get_user(user_id).paper_account_id)))
    config = bench_config()
    ids = SequentialIds("bench-api")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    per_bot, extra = divmod(deals, bots)
    batch, appended = ProcessingEvent(), 0

    def stage(aggregates) -> None:
        nonlocal batch, appended
        for aggregate in aggregates:
            batch.events.extend(aggregate.collect_events())
            batch.aggregates[aggregate.id] = aggregate
        if len(batch.events) >= 5000:
            appended += len(trading._record(batch))  # one transaction, in step order
            batch = ProcessingEvent()

    for k in range(bots):
        owner, account = owners[k % users]
        created = t0 + timedelta(minutes=k)
        cause = Cause(created, owner, f"bench:{k}")
        bot = Bot.create(
            ids.new_id(),
            cause,
            name=f"bench bot {k:04d}",
            owner_id=owner,
            exchange_account_id=account,
            config=config,
        )
        bot.start(cause)
        stage([bot])
        venue = PaperExchange(config.pair)
        engine = DcaEngine(bot, venue, ids)
        rows = candles(k, per_bot + (1 if k < extra else 0))
        for j, (o, h, low, c) in enumerate(rows):
            at = created + timedelta(minutes=5 * (j + 1))
            engine.begin_step(Cause(at, ENGINE, f"bench:{k}:{j}"))
            if j == len(rows) - 1:
                bot.stop(Cause(at, owner, f"bench:{k}:stop"))  # no deal after the last
            venue.walk_candle(o, h, low, c, engine)
            engine.on_close(c)
            stage([bot, *engine.take_changes()])
        assert engine.deal is None, "every deal closes"
    if batch.events:
        appended += len(trading._record(batch))
    identity.close()
    trading.close()
    return appended, time.perf_counter() - started


def email(u: int) -> str:
    return f"bench{u:03d}@example.com"


def rebuild(url: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(TRADETAPE), "projections", "rebuild", "--no-progress", "--database", url],
        check=True,
        env=child_env(),
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def counts(url: str) -> dict[str, int]:
    """Rows of the projections; ``bench_bots`` and ``bench_deals``: the generated users'
    (the others' that a run with writers added do not stop ``--reuse``)."""
    from application.settings import parse_database_url
    from projections.store import open_view_store

    store = open_view_store(parse_database_url(url))
    try:
        found = {
            name: store.query(f"SELECT COUNT(*) FROM {store.q(name)}")[0][0]
            for name in ("fe_bots", "fe_deals", "fe_orders", "pnl_owners", "balances")
        }
        bots = f"SELECT bot_id FROM {store.q('fe_bots')} WHERE substr(name, 1, 10) = 'bench bot '"
        found["bench_bots"] = store.query(f"SELECT COUNT(*) FROM ({bots}) b")[0][0]
        found["bench_deals"] = store.query(
            f"SELECT COUNT(*) FROM {store.q('fe_deals')} WHERE bot_id IN ({bots})"
        )[0][0]
        return found
    except Exception:  # no such table yet (a fresh schema): no rows to reuse
        return {}
    finally:
        store.close()


# --- 2. the servers ---------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADETAPE_")}
    env["TRADETAPE_SECRET_KEY"] = SECRET_KEY
    return {**env, **extra}


SERVER_PIDS: dict[int, int] = {}  # port: the process answering it (for its CPU time)


def cpu_seconds(port: int) -> float | None:
    """The CPU time (user + system, all threads) of the server on ``port`` so far."""
    pid = SERVER_PIDS.get(port)
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Child:
    name: str
    command: list[str]
    port: int
    health: str
    process: subprocess.Popen | None = None
    log: Path = field(default_factory=lambda: Path(os.devnull))
    env: dict[str, str] = field(default_factory=dict)

    def start(self, logs: Path, timeout: float = 180.0) -> Child:
        import urllib.request

        self.log = logs / f"{self.name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(**self.env),
                cwd=ROOT,
            )
        SERVER_PIDS[self.port] = self.process.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}{self.health}", timeout=2
                ) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.name} did not answer within {timeout:g} s")

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def plain_app(url: str):
    """The comparison: FastAPI, JSON, the same rows read with plain SQL."""
    import psycopg
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from application.settings import _connect_kwargs, parse_database_url
    from projections.balances import BALANCES
    from projections.frontend import FE_BOTS
    from projections.ledger import TALLY_COLUMNS
    from projections.pnl import PNL_BOTS, PNL_OWNERS

    database = parse_database_url(url)
    schema = database.env.get("POSTGRES_SCHEMA", "public")
    conn = psycopg.connect(**_connect_kwargs(database.env), autocommit=True)
    lock = threading.Lock()

    def rows(sql: str, params: tuple | list) -> list[dict[str, Any]]:
        with lock, conn.cursor() as cur:
            cur.execute(sql, params)
            names = [d.name for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def t(table) -> str:
        return f'"{schema}"."{table.name}"'

    def cols(table) -> str:
        return ", ".join(table.column_names)

    figures = [c for c in TALLY_COLUMNS if c not in ("step_pending",)]
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "green"})

    @app.get("/portfolio/{owner}")
    def portfolio(owner: str) -> JSONResponse:
        tally = rows(
            f"SELECT {', '.join(figures)} FROM {t(PNL_OWNERS)} WHERE owner_id = %s", (owner,)
        )
        balances = rows(
            f"SELECT account_id, asset, free, locked, total, updated_at FROM "
            f"{t(BALANCES)} WHERE owner_id = %s ORDER BY account_id, asset",
            (owner,),
        )
        return JSONResponse({"portfolio": {**(tally[0] if tally else {}), "balances": balances}})

    @app.get("/bots/{owner}")
    def bots(owner: str, first: int = 50) -> JSONResponse:
        page = rows(
            f"SELECT {cols(FE_BOTS)} FROM {t(FE_BOTS)} WHERE owner_id = %s "
            f"ORDER BY created_at, bot_id LIMIT %s",
            (owner, first + 1),
        )
        kept = page[:first]
        ids = [b["bot_id"] for b in kept]
        pnl = {
            r["bot_id"]: r
            for r in rows(
                f"SELECT {cols(PNL_BOTS)} FROM {t(PNL_BOTS)} WHERE bot_id = ANY(%s)", (ids,)
            )
        }
        return JSONResponse(
            {
                "bots": [{**b, "pnl": pnl.get(b["bot_id"])} for b in kept],
                "has_next_page": len(page) > first,
            }
        )

    return app


def serve_plain(url: str, port: int) -> int:
    import uvicorn

    uvicorn.run(plain_app(url), host="127.0.0.1", port=port, log_level="warning")
    return 0


# --- 3. the load ------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: a request's bytes out, (status, body) back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"no content-length in {head!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def graphql_request(port: int, query: str, token: str) -> bytes:
    body = json.dumps({"query": query}).encode()
    return (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def get_request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


@dataclass
class Result:
    name: str
    sent: int
    seconds: float
    latencies: list[float]
    failures: int
    first_failure: str = ""
    overloaded_after: float | None = None  # open loop: when the backlog passed its bound
    cpu_ms: float | None = None  # the server's CPU time per answered request
    window: tuple[float, float] | None = None  # open loop: Unix times of its first and last
    others_rate: float | None = None  # events/s the other users appended in that window
    # open loop: (Unix time it was due, seconds) of each answer slower than SLOW_S, to lay
    # beside what the server was doing then (bench_live.py's api.jsonl)
    slow: list[tuple[float, float]] = field(default_factory=list)

    def cpu(self) -> str:
        return "-" if self.cpu_ms is None else f"{self.cpu_ms:.2f}"

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def checked(status: int, body: bytes, graphql: bool, failures: list[str]) -> None:
    if status != 200 or (graphql and b'"errors"' in body):
        failures.append(f"HTTP {status}: {body[:300]!r}")


async def closed_loop(
    name: str, port: int, requests: list[bytes], *, seconds: float, connections: int, graphql: bool
) -> Result:
    """``connections`` clients, each sending its next request as soon as it has the answer:
    with one, the unloaded latency; with many, the most the server can answer."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures: list[str] = []
    sent = 0
    end = loop.time() + seconds

    async def client() -> None:
        nonlocal sent
        connection = await Connection.open(port)
        try:
            while loop.time() < end:
                sent += 1
                began = loop.time()
                status, body = await connection.send(requests[sent % len(requests)])
                latencies.append(loop.time() - began)
                checked(status, body, graphql, failures)
        finally:
            connection.close()

    began = loop.time()
    await asyncio.gather(*(client() for _ in range(connections)))
    return Result(
        name, sent, loop.time() - began, latencies, len(failures), failures[0] if failures else ""
    )


async def open_loop(
    name: str,
    port: int,
    requests: list[bytes],
    *,
    rate: float,
    seconds: float,
    connections: int,
    graphql: bool,
    max_backlog: float = 1.0,
) -> Result:
    """Request i is due at t0 + i / rate and goes out on the first free connection; its
    latency counts from when it was due. Once more than ``max_backlog`` seconds of requests
    wait for a connection, the server is not holding the rate: sending stops there."""
    loop = asyncio.get_running_loop()
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    failures: list[str] = []
    slow: list[tuple[float, float]] = []
    waiting = 0
    last_done = 0.0

    async def one(i: int, due: float) -> None:
        nonlocal waiting, last_done
        waiting += 1
        connection = await pool.get()
        waiting -= 1
        try:
            status, body = await connection.send(requests[i % len(requests)])
        except Exception as error:  # a dropped connection is a failure, not a crash
            failures.append(f"{type(error).__name__}: {error}")
            pool.put_nowait(await Connection.open(port))
            return
        done = loop.time()
        pool.put_nowait(connection)
        last_done = max(last_done, done)
        checked(status, body, graphql, failures)
        latencies.append(done - due)
        if done - due > SLOW_S:
            slow.append((round(wall0 + (due - t0), 3), round(done - due, 4)))

    total, overloaded = int(rate * seconds), None
    cpu_before = cpu_seconds(port)
    t0 = loop.time() + 0.05
    wall0 = time.time() + 0.05
    tasks = []
    for i in range(total):
        due = t0 + i / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if waiting > rate * max_backlog:
            overloaded = loop.time() - t0
            break
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    cpu_after = cpu_seconds(port)
    while not pool.empty():
        pool.get_nowait().close()
    cpu_ms = (
        None
        if cpu_before is None or cpu_after is None or not latencies
        else (cpu_after - cpu_before) / len(latencies) * 1000
    )
    return Result(
        name,
        len(tasks),
        max(last_done - t0, 1e-9),
        latencies,
        len(failures),
        failures[0] if failures else "",
        overloaded,
        cpu_ms,
        (wall0, wall0 + max(last_done - t0, 1e-9)),
        slow=sorted(slow),
    )


def login(port: int, user: int, address: str | None = None, password: str = PASSWORD) -> str:
    """An access token of user ``user`` (or of ``address``, with ``password``)."""
    import urllib.request

    query = (
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { "
        "... on AuthPayload { accessToken } ... on AuthError { code message } } }"
    )
    variables = {"e": address or email(user), "p": password}
    body = json.dumps({"query": query, "variables": variables})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return answer["data"]["login"]["accessToken"]


async def one_answer(port: int, request: bytes) -> dict[str, Any]:
    connection = await Connection.open(port)
    try:
        status, body = await connection.send(request)
    finally:
        connection.close()
    assert status == 200, body
    return json.loads(body)


async def same_rows(gql_port: int, plain_port: int, token: str, owner: str) -> str:
    """Both endpoints answer the same figures and bots (they read the same rows)."""
    g = await one_answer(gql_port, graphql_request(gql_port, PORTFOLIO, token))
    p = await one_answer(plain_port, get_request(plain_port, f"/portfolio/{owner}"))
    assert "errors" not in g, g
    gp, pp = g["data"]["portfolio"], p["portfolio"]
    assert gp["dealsClosed"] == pp["deals_closed"] and Decimal(gp["realizedPnl"]) == Decimal(
        pp["realized_pnl"]
    ), (gp, pp)
    assert len(gp["balances"]) == len(pp["balances"])
    g = await one_answer(gql_port, graphql_request(gql_port, BOTS, token))
    p = await one_answer(plain_port, get_request(plain_port, f"/bots/{owner}?first=50"))
    gb = [e["node"] for e in g["data"]["bots"]["edges"]]
    assert [b["id"] for b in gb] == [b["bot_id"] for b in p["bots"]]
    assert [b["pnl"]["dealsClosed"] for b in gb] == [b["pnl"]["deals_closed"] for b in p["bots"]]
    return (
        f"{gp['dealsClosed']:,} deals closed, realized {Decimal(gp['realizedPnl']):.2f} "
        f"USDT; a page of {len(gb)} bots, hasNextPage "
        f"{g['data']['bots']['pageInfo']['hasNextPage']}"
    )


@dataclass
class Figures:
    """One endpoint's three measurements."""

    name: str
    unloaded: Result  # one request at a time
    capacity: Result  # closed loop, all connections busy
    target: Result  # open loop at the target rate

    @property
    def failures(self) -> list[Result]:
        return [r for r in (self.unloaded, self.capacity, self.target) if r.failures]


async def figures(name: str, port: int, requests: list[bytes], args, graphql: bool) -> Figures:
    options = dict(graphql=graphql)
    await closed_loop("warm-up", port, requests, seconds=1, connections=4, **options)
    return Figures(
        name,
        await closed_loop(name, port, requests, seconds=args.seconds / 4, connections=1, **options),
        await closed_loop(
            name, port, requests, seconds=args.seconds / 2, connections=args.connections, **options
        ),
        await open_loop(
            name,
            port,
            requests,
            rate=args.rate,
            seconds=args.seconds,
            connections=args.connections,
            **options,
        ),
    )


async def measure(
    args, gql_ports: list[tuple[str, int]], plain_port: int, tokens: list[str], owners: list[str]
) -> list[list[Figures]]:
    """Per query: each GraphQL server's figures, then the plain app's."""
    groups = []
    for label, query, path in (
        ("portfolio", PORTFOLIO, "/portfolio/{}"),
        ("bots(first: 50)", BOTS, "/bots/{}?first=50"),
    ):
        group = []
        for suffix, port in gql_ports:
            gql = [graphql_request(port, query, t) for t in tokens]
            group.append(await figures(f"GraphQL {label}{suffix}", port, gql, args, True))
        plain = [get_request(plain_port, path.format(o)) for o in owners]
        group.append(await figures(f"plain FastAPI {label}", plain_port, plain, args, False))
        groups.append(group)
    return groups


# --- the run ----------------------------------------------------------------------------------


def _times(pair: tuple[Result, Result], q: float) -> str:
    return f"{pair[0].percentile(q) / pair[1].percentile(q):7.1f}x"


def _rates(pair: tuple[Result, Result]) -> str:
    return f"{pair[0].rate / pair[1].rate:8.2f}"


def report(args, groups: list[list[Figures]]) -> None:
    rate = f"{args.rate:g}/s"
    print()
    print(
        f"one at a time: 1 connection, {args.seconds / 4:g} s; capacity: "
        f"{args.connections} connections back to back, {args.seconds / 2:g} s; at {rate}: "
        f"open loop for {args.seconds:g} s on {args.connections} connections, latency "
        "from each request's scheduled time (stopped once over 1 s of requests wait); CPU "
        "ms: the server process's CPU time (all its threads: the projections following "
        "the others' events too) per answered request"
    )
    head = f"{'endpoint':52} {'one at a time':>17}   {'capacity':>17}   {'at ' + rate:>35}"
    sub = (
        f"{'':52} {'p50 ms':>8} {'p99 ms':>8}   {'req/s':>8} {'p99 ms':>8}   "
        f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>8}"
    )
    print(head)
    print(sub)
    print("-" * len(sub))

    def row(label: str, f: Figures) -> str:
        t = f.target
        held = f" overloaded after {t.overloaded_after:.1f} s" if t.overloaded_after else ""
        return (
            f"{label:52} {f.unloaded.percentile(50):8.2f} {f.unloaded.percentile(99):8.2f}"
            f"   {f.capacity.rate:8.0f} {f.capacity.percentile(99):8.2f}   "
            f"{t.rate:8.0f} {t.percentile(50):8.2f} {t.percentile(99):8.2f} "
            f"{t.cpu():>8}{held}"
        )

    for *graphqls, p in groups:
        for g in graphqls:
            print(row(g.name, g))
        print(row(p.name, p))
        for g in graphqls:
            u, c, t = (g.unloaded, p.unloaded), (g.capacity, p.capacity), (g.target, p.target)
            label = "  GraphQL / plain" + (" (cache off)" if "cache off" in g.name else "")
            cpu = (
                f"{t[0].cpu_ms / t[1].cpu_ms:7.1f}x" if t[0].cpu_ms and t[1].cpu_ms else f"{'-':>8}"
            )
            print(
                f"{label:52} {_times(u, 50)} {_times(u, 99)}   {_rates(c)} "
                f"{_times(c, 99)}   {_rates(t)} {_times(t, 50)} {_times(t, 99)} {cpu}"
            )
    print()
    for g in (g for *graphqls, _ in groups for g in graphqls):
        t = g.target
        held = (
            not t.overloaded_after
            and t.rate >= 0.98 * args.rate
            and t.percentile(99) < 50
            and not t.failures
        )
        others = ""
        if t.others_rate is not None:  # the load it was measured under, as asked for
            held = held and t.others_rate >= 0.95 * args.writers_rate
            others = f" (others appended {t.others_rate:,.0f} events/s meanwhile)"
        print(
            f"goal for {g.name:52} {rate} with p99 < 50 ms: {'MET' if held else 'MISSED'}{others}"
        )
    for f in (f for group in groups for f in group):
        for r in f.failures:
            print(f"{f.name}: {r.failures} failed, first: {r.first_failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=DEFAULT_URL)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--writers-rate",
        type=float,
        default=200,
        help="events/s other users append during the last runs (0: none)",
    )
    parser.add_argument(
        "--writers-only",
        action="store_true",
        help="only the runs while others trade (to compare two versions)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the schema if it already holds the users, bots and deals",
    )
    parser.add_argument("--plain-app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_app:
        return serve_plain(args.database, args.plain_app)

    from application.settings import parse_database_url

    print(f"database: {parse_database_url(args.database).display}")
    have = counts(args.database) if args.reuse else None
    if not have or have["bench_bots"] != args.bots or have["bench_deals"] != args.deals:
        drop(args.database)
        events, seconds = generate(args.database, args.users, args.bots, args.deals)
        print(
            f"generated {args.users} users, {args.bots:,} bots, {args.deals:,} deals: "
            f"{events:,} events in {seconds:.0f} s ({events / seconds:,.0f} events/s)"
        )
        print(f"projections rebuilt in {rebuild(args.database):.0f} s")
    rows = counts(args.database)
    print("projection rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    assert rows["bench_bots"] == args.bots and rows["bench_deals"] == args.deals, rows

    import tempfile

    logs = Path(tempfile.mkdtemp(prefix="bench_api-"))
    plain_port = free_port()
    plain = Child(
        "plain-fastapi",
        [sys.executable, __file__, "--database", args.database, "--plain-app", str(plain_port)],
        plain_port,
        "/health",
    )
    try:
        plain.start(logs)
        measured, codes = measure_servers(args, plain_port, logs)
    finally:
        plain.stop()
    # per query: GraphQL cached, uncached (then both while others trade), plain (first pass)
    groups = [
        [*(m[0] for m in measured), measured[0][1]],
        [*(m[2] for m in measured), measured[0][3]],
    ]
    report(args, groups)
    print(f"\ntradetape serve exited {codes} after SIGTERM; logs in {logs}")
    return 0


def measure_servers(args, plain_port: int, logs: Path) -> tuple[list[list[Figures]], list]:
    """One after the other: the default server (answers cached by read version), then the
    same server answering every query afresh; each beside the plain app."""
    from application.bootstrap import open_identity

    identity = open_identity(args.database, secret_key=SECRET_KEY)
    try:
        owners = [str(identity.find_user(email(u)).id) for u in range(args.users)]
    finally:
        identity.close()

    def serve(name: str, **env: str) -> Child:
        port = free_port()
        return Child(
            name,
            [str(TRADETAPE), "serve", "--port", str(port), "--database", args.database],
            port,
            "/health",
            env=env,
        )

    measured, codes = [], []
    passes = (
        []
        if args.writers_only
        else [("", {}), (" (cache off)", {"TRADETAPE_GRAPHQL_CACHE": "off"})]
    )
    if args.writers_rate > 0:
        others = f" +others {args.writers_rate:g} ev/s"
        passes += [(others, {}), (others + " (cache off)", {"TRADETAPE_GRAPHQL_CACHE": "off"})]
    for n, (suffix, env) in enumerate(passes):
        server = serve(f"tradetape-serve-{n}", **env)
        started = time.perf_counter()
        server.start(logs)
        print(
            f"{server.name}{suffix} answered /health after "
            f"{time.perf_counter() - started:.1f} s (port {server.port})"
        )
        writers = None
        try:  # the server is stopped whatever happens, the writers' failure included
            writers = Writers.start(args, logs, n) if "others" in suffix else None
            tokens = [login(server.port, u) for u in range(args.users)]
            print("check: " + asyncio.run(same_rows(server.port, plain_port, tokens[0], owners[0])))
            began = time.time()
            groups = asyncio.run(measure(args, [(suffix, server.port)], plain_port, tokens, owners))
            figures_ = [f for group in groups for f in group]
            if writers is not None:
                writers.check_alive()  # figures measured without the load are not kept
                whole = writers.rate_in((began, time.time()))
                print(
                    f"other users appended {whole:,.0f} events/s over the whole measured "
                    f"stretch ({time.time() - began:.0f} s)"
                )
                for f in figures_:
                    if f.target.window and "GraphQL" in f.name:
                        f.target.others_rate = writers.rate_in(f.target.window)
            measured.append(figures_)
        finally:
            if writers is not None:
                print(f"other users' writes: {writers.stop()}")
            codes.append(server.stop())
    return measured, codes


@dataclass
class Writers:
    """``scripts/bench_writers.py`` running: it prints ``progress T N`` (Unix time, events
    appended so far) every second, from which the events appended in any window follow."""

    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, args, logs: Path, n: int, timeout: float = 120.0) -> Writers:
        """Started, and returned once its bots trade (its first progress line)."""
        log = logs / f"writers-{n}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "bench_writers.py"),
                    "--database",
                    args.database,
                    "--rate",
                    str(args.writers_rate),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(),
                cwd=ROOT,
            )
        writers = cls(process, log)
        deadline = time.monotonic() + timeout
        while not writers.progress():
            writers.check_alive()
            if time.monotonic() > deadline:
                writers.stop()
                raise SystemExit(f"bench_writers.py did not trade within {timeout:g} s; see {log}")
            time.sleep(0.2)
        return writers

    def progress(self) -> list[tuple[float, int]]:
        return [
            (float(t), int(n))
            for line in self.log.read_text().splitlines()
            if line.startswith("progress ")
            for _, t, n in [line.split()]
        ]

    def check_alive(self) -> None:
        """Stops the benchmark, loudly, if the writers died: their load was not there."""
        if self.process.poll() is not None:
            raise SystemExit(
                f"bench_writers.py DIED (exit {self.process.returncode}): the "
                "figures with other users writing are invalid. Its log "
                f"({self.log}):\n{self.log.read_text()[-3000:]}"
            )

    def events_at(self, at: float) -> float:
        """Events appended by Unix time ``at``, interpolated between progress lines."""
        points = self.progress()
        before = [(t, n) for t, n in points if t <= at] or [(points[0][0], 0)]
        after = [(t, n) for t, n in points if t >= at]
        (t0, n0), (t1, n1) = before[-1], (after[0] if after else before[-1])
        return n0 if t1 <= t0 else n0 + (n1 - n0) * (at - t0) / (t1 - t0)

    def rate_in(self, window: tuple[float, float]) -> float:
        start, end = window
        return (self.events_at(end) - self.events_at(start)) / max(end - start, 1e-9)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return "did not stop"
        found = [line for line in self.log.read_text().splitlines() if line.startswith("events ")]
        if not found:
            return f"no figures (exit {self.process.returncode}); see {self.log}"
        _, events, _, seconds = found[-1].split()
        rate = int(events) / float(seconds)
        return f"{int(events):,} events in {float(seconds):.0f} s ({rate:,.0f}/s)"


if __name__ == "__main__":
    sys.exit(main())
