"""Benchmark: TradingView-style signals on ``POST /webhooks/{id}``, beside a plain FastAPI
endpoint doing the same validation.

    .venv/bin/python scripts/bench_webhooks.py [--rate 100] [--seconds 20] \
        [--headroom 200] [--timings] [--database sqlite:///tmp/bench.sqlite]

1. ``tradetape users create`` makes a verified user in a fresh store; ``tradetape serve`` starts
   on a free loopback port (a subprocess, its paper market at the default speed). Over
   GraphQL the user creates a bot with ``startCondition: signal``, starts it, and creates a
   webhook for it.
2. Every signal is the README's TradingView alert message as TradingView sends it (the
   secret in the body, a fresh ``timenow``, a unique id), alternately ``buy`` and ``sell``:
   each one opens or closes a real deal (a market order on the paper venue, its events
   stored, the read models caught up). One keep-alive connection, so the deals alternate
   in order, as one TradingView alert stream does.
3. The plain endpoint (this script with ``--plain-app``, another process): FastAPI, the same
   body parsing, secret check (constant time), field checks, staleness and duplicate-id
   rule (in memory), answering 200; no event store, no trading.
4. An open-loop client (``scripts/bench_api.py``'s: requests due on a fixed schedule, a
   latency counted from when a request was due) sends ``--rate`` signals/s for
   ``--seconds`` to each. Every answer must be HTTP 200 (a signal accepted).
5. Then, to show the headroom, the same on the same server at ``--headroom`` signals/s
   (200 by default; 0 leaves it out). Each round prints p50/p95/p99 and the server's CPU
   time per signal; ``--timings`` adds the server's breakdown of each signal's time by
   phase (``TRADETAPE_WEBHOOK_TIMINGS=1``, api/webhook_timings.py): where wall time is
   well above CPU time, the phase waited.

Goal (issue 12): at least 100 signals/s sustained with p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from starlette.requests import Request  # resolved by FastAPI from this module's globals

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_api import TRADETAPE, Child, child_env, free_port, open_loop  # noqa: E402

PASSWORD = "Bench-password-1"
EMAIL = "bench-signals@example.com"
PLAIN_SECRET = "plain-endpoint-secret"
ALERT = ROOT / "api" / "examples" / "tradingview" / "tradetape_alert.json"
CONFIG = {"pair": "BTC/USDT", "baseOrderQuote": "10", "safetyOrderQuote": "10",
          "maxSafetyOrders": 1, "priceDeviationPct": "50", "safetyVolumeScale": "1",
          "safetyStepScale": "1", "takeProfitPct": "50", "startCondition": "signal"}
GOAL_RATE, GOAL_P99_MS = 100.0, 50.0
TIMINGS_ENV, TIMINGS_LINE = "TRADETAPE_WEBHOOK_TIMINGS", "webhook timings (ms):"


def gql(port: int, query: str, variables: dict | None = None, token: str | None = None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        json.dumps({"query": query, "variables": variables or {}}).encode(),
        {"Content-Type": "application/json",
         **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    return body["data"]


def prepare(port: int) -> tuple[str, str]:
    """(webhook id, secret) of a running signal bot's webhook."""
    token = gql(port, 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) '
                '{ ... on AuthPayload { accessToken } } }',
                {"e": EMAIL, "p": PASSWORD})["login"]["accessToken"]
    bot = gql(port, 'mutation($c: DcaConfigInput!) { createBot(name: "bench", config: $c) '
              '{ ... on Bot { id } ... on BotErrors { code } } }', {"c": CONFIG}, token)
    bot_id = bot["createBot"]["id"]
    gql(port, "mutation($id: ID!) { startBot(id: $id) { __typename } }", {"id": bot_id}, token)
    hook = gql(port, 'mutation($b: ID) { createWebhook(input: {name: "bench", botId: $b}) '
               '{ ... on Webhook { id secret } } }', {"b": bot_id}, token)["createWebhook"]
    return hook["id"], hook["secret"]


def signals(port: int, path: str, secret: str, count: int, first: int = 0) -> list[bytes]:
    """``count`` alerts, buy then sell, as TradingView sends them (text/plain); their ids
    from ``first`` on."""
    template = ALERT.read_text().replace("PASTE-YOUR-WEBHOOK-SECRET", secret)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    requests = []
    for i in range(first, first + count):
        values = {"strategy.order.action": "buy" if i % 2 == 0 else "sell",
                  "strategy.order.id": f"bench-{i}", "ticker": "BTCUSDT",
                  "close": "91000.5", "timenow": now}
        body = template
        for name, value in values.items():
            body = body.replace("{{" + name + "}}", value)
        raw = body.encode()
        requests.append(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        f"Content-Type: text/plain\r\nContent-Length: {len(raw)}\r\n\r\n"
                        .encode() + raw)
    return requests


def plain_app():
    """The same validation as the real endpoint (``domain.signals``), nothing stored."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from domain.signals import SignalError, authenticate, check_fresh, parse_body, read_signal

    app, seen = FastAPI(), set()

    @app.post("/webhooks/{webhook_id:uuid}")
    async def receive(webhook_id: UUID, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            data = parse_body(body)
            authenticate(PLAIN_SECRET, body, request.headers.get("X-Tradetape-Signature"), data)
            signal = read_signal(data)
            check_fresh(signal, datetime.now(UTC))
        except SignalError as refused:
            return JSONResponse({"code": refused.code}, status_code=refused.status)
        if signal.signal_id in seen:
            return JSONResponse({"status": "ignored"})
        seen.add(signal.signal_id)
        return JSONResponse({"status": "accepted"})

    @app.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "green"})

    return app


def serve_plain(port: int) -> int:
    import uvicorn

    uvicorn.run(plain_app(), host="127.0.0.1", port=port, log_level="warning")
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def breakdown(log_text: str) -> str:
    """The server's timing lines (api/webhook_timings.py) summed up, phase by phase:
    wall p50/p99 and mean CPU (where wall > CPU, the phase waited)."""
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    order: list[str] = []  # of the phases, as the longest line has them
    for text in log_text.splitlines():
        if TIMINGS_LINE not in text:
            continue
        parts = text.partition(TIMINGS_LINE)[2].split()
        names = [part.partition("=")[0] for part in parts]
        if len(names) > len(order):
            order = names
        for part in parts:
            name, _, value = part.partition("=")
            wall, _, cpu = value.strip('"}').partition("/")
            walls.setdefault(name, []).append(float(wall))
            if cpu:
                cpus.setdefault(name, []).append(float(cpu))
    rows = ["server-side breakdown of a signal (ms): phase, count, wall p50 / p99 / max, "
            "cpu mean (gc2: the collector's full passes, which stop every thread)"]
    for name in sorted(walls, key=lambda n: order.index(n) if n in order else len(order)):
        ordered = sorted(walls[name])
        cpu = cpus.get(name)
        rows.append(f"  {name:<12} {len(ordered):5d} {ordered[len(ordered) // 2]:7.2f} "
                    f"{ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]:7.2f} "
                    f"{ordered[-1]:7.2f}  "
                    + (f"{sum(cpu) / len(cpu):6.2f}" if cpu else "     -"))
    return "\n".join(rows)


def line(name: str, result) -> str:
    return (f"{name:<34} {result.rate:8.1f}/s  p50 {result.percentile(50):6.1f} ms  "
            f"p95 {result.percentile(95):6.1f} ms  p99 {result.percentile(99):6.1f} ms  "
            f"failures {result.failures}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--headroom", type=float, default=200.0, metavar="RATE",
                        help="then the same for --seconds at this rate (0: not)")
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--timings", action="store_true",
                        help="the server's breakdown of each signal's time, by phase "
                             "(TRADETAPE_WEBHOOK_TIMINGS=1)")
    parser.add_argument("--plain-app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_app:
        return serve_plain(args.plain_app)
    logs = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    url = args.database or f"sqlite:///{logs / 'bench.sqlite'}"
    import subprocess

    subprocess.run([str(TRADETAPE), "users", "create", "--email", EMAIL, "--password",
                    PASSWORD, "--verified", "--database", url], check=True,
                   env=child_env(), capture_output=True)
    port, plain_port = free_port(), free_port()
    server = Child("tradetape", [str(TRADETAPE), "serve", "--port", str(port),
                                 "--database", url], port, "/health",
                   env={TIMINGS_ENV: "1"} if args.timings else {}).start(logs)
    plain = Child("plain", [sys.executable, __file__, "--plain-app", str(plain_port)],
                  plain_port, "/health").start(logs)
    rates = [args.rate, *([args.headroom] if args.headroom else [])]
    rounds = []
    try:
        hook_id, secret = prepare(port)
        import time

        time.sleep(2.5)  # the market's first candles: a deal buys at the last price
        sent = 0
        for rate in rates:
            count = 2 * int(rate * args.seconds / 2)  # buy, sell: no deal left open
            logged, cpu = len(server.log.read_text()), cpu_seconds(server.process.pid)
            ours = asyncio.run(open_loop(
                "tradetape", port, signals(port, f"/webhooks/{hook_id}", secret, count,
                                           first=sent),
                rate=rate, seconds=args.seconds, connections=1, graphql=False))
            cpu = cpu_seconds(server.process.pid) - cpu
            sent += ours.sent  # (an overloaded round stops early) the next buys or sells
            rounds.append((rate, count, ours, cpu, server.log.read_text()[logged:]))
        theirs = asyncio.run(open_loop(
            "plain", plain_port, signals(plain_port, f"/webhooks/{hook_id}", PLAIN_SECRET,
                                         rounds[0][1]),
            rate=args.rate, seconds=args.seconds, connections=1, graphql=False))
    finally:
        server.stop()
        plain.stop()
    verdicts = [report(rate, count, ours, cpu, log_text if args.timings else None)
                for rate, count, ours, cpu, log_text in rounds]
    print(line("plain FastAPI, same validation", theirs)
          + (f"\nplain: first failure: {theirs.first_failure}" if theirs.first_failure else ""))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"goal >= {GOAL_RATE:g} signals/s with p99 < {GOAL_P99_MS:g} ms: "
          f"{'MET' if verdicts[0] else 'MISSED'}")
    return 0


def report(rate: float, count: int, ours, cpu: float, log_text: str | None) -> bool:
    """Print one round; whether it held ``rate`` with p99 under the goal."""
    print(f"{count} signals at {rate:g}/s for {count / rate:g} s, one connection "
          f"(each signal opens or closes a deal on Tradetape)")
    print(line("POST /webhooks/{id} (Tradetape)", ours))
    print(f"  server CPU {cpu * 1000 / max(len(ours.latencies), 1):.1f} ms a signal (its live "
          f"loop and read models included)")
    if log_text is not None:
        print(breakdown(log_text))
    if ours.overloaded_after is not None:
        print(f"  sending stopped after {ours.sent} signals, at {ours.overloaded_after:.1f} s: "
              "the server fell more than 1 s behind")
    if ours.first_failure:
        print(f"  first failure: {ours.first_failure}")
    held = (ours.failures == 0 and ours.overloaded_after is None
            and ours.rate >= rate * 0.98 and ours.percentile(99) < GOAL_P99_MS)
    print(f"  at {rate:g}/s: p99 < {GOAL_P99_MS:g} ms {'held' if held else 'not held'}")
    return held


if __name__ == "__main__":
    raise SystemExit(main())
