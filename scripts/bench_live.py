"""Benchmark: N running paper bots traded by an engine process, read through an API process
by a second client, the read models kept by a projections process, as an operator runs them.

    .venv/bin/python scripts/bench_live.py --bots N[,N...] --speed S --seconds T \\
        [--database postgresql://postgres@127.0.0.1:5432/test] [--no-sqlite] \\
        [--fresh] [--drop] [--keep] [--api-rate 500] [--warm-up 5] \\
        [--nice-engine 0] [--nice-projections 0]

For each N, on PostgreSQL (the URL's schema, ``_N`` after it for several N, else
``bench_live_N``):

1. **Seed**, unless the schema already holds a log (kept for the next runs; ``--fresh``
   seeds it again, ``--drop`` drops it after the run). ``--api-users`` users (10) are
   registered through identity (verified, a funded paper account) and their 10 bots each
   created and started through the trading application's commands: they log in for the
   API load. Every other user is a copy of a template user made by the application (an
   account, a deposit, 10 bots created and started), its events written with ``COPY`` with
   every id renamed (``scripts/clone_seed.py``, shared with bench_start); 50 templates in
   turn, so that the bots' configurations (take profit, ladder step and depth, base order,
   stop loss, trailing) differ and they do not all act on the same candle. Then the read
   models are rebuilt once. A kept schema goes on from where its last run stopped.
2. **Start** three processes on it, as an operator would: ``tradetape serve --role
   projections``, ``--role engine`` (through ``scripts/live_probe.py``, which writes each
   step of its live loop to a file) and ``--role api``; start time: each one's launch to
   its ready line (the api: to ``/health`` answering). ``--nice-engine N`` and
   ``--nice-projections N`` start those two with ``serve --nice N`` (default 0: as
   inherited), which gives the api a core first (README, "Process priority per role").
3. **Run** the replayed market at S candles per second (``--speed`` 60 x S), the shipped
   month from its first candle at the processes' launch (``TRADETAPE_FEED_EPOCH``: every run
   sees the same candles), for a warm-up
   (until the engine leases every bot, then the first close they all take part in, where
   every bot without a deal opens one, and ``--warm-up`` s after it; printed apart) and
   then T seconds, measured from outside the engine's step:
   - candles/s kept (delivered / T) against S, step time p50/p99 and lag p50/p99 (a
     candle's close on the server's clock to the end of its step), from the engine's
     step file;
   - events/s appended: the log's head, before and after;
   - projection lag, sampled every 0.5 s: events behind (the log's head minus the slowest
     projection's position) and seconds behind (since the first sample whose head had
     passed that position: at most a sample late), p50 and max;
   - a second client (this process, asyncio, ``scripts/bench_api.py``'s open-loop
     generator) sending GraphQL ``portfolio`` and ``bots(first: 50)`` to the api process at
     ``--api-rate`` requests/s (0: none), the two queries taking turns every 10 s, each
     logged-in user in turn: requests answered per second, p50/p99 (from when each was
     due), failures;
   - CPU (% of one core over the window) and RSS at the end, per process.

On SQLite (a temporary file, seeded through the application: keep N small) the same run
has one ``serve --role all`` process (roles need PostgreSQL); ``--no-sqlite`` skips it.

Targets (issue 15, a quiet 2-core machine: 10,000 bots at 1 candle/s for 300 s, 1,000
bots at 10 candles/s), each printed ``MET``/``MISSED`` on PostgreSQL: the engine keeps up
(95% of the candles delivered, p99 lag < 2 s); both queries hold ``--api-rate`` (95% of it
answered, p99 < 50 ms, no failure); the projections stay within 5 s of the log. The last
line is ``MET`` only if every target was met for every N. Progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bench_api import BOTS, PORTFOLIO, SERVER_PIDS, Result, graphql_request, login, open_loop
from clone_seed import Cloner, copy_users, ensure_schema, rebuild_projections, template
from drill_kill import Processes, with_schema
from drill_watch import Leases

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
PER_USER = 10
TEMPLATES = 50  # template users cloned in turn: 500 configurations
PASSWORD = "Bench-live-password-1"
MAX_LAG_S = 2.0
KEPT = 0.95  # of the candles due, delivered; of the requests due, answered
API_P99_MS = 50.0
PROJECTION_LAG_S = 5.0
API_TURN_S = 10.0  # each query's turn of the load
HEAVY_STEP = 10_000  # events a step writes to count as a wave (a take-profit wave: 18k-120k)
READY = {"projections": "Tradetape projections", "engine": "Tradetape engine worker",
         "api": "Tradetape on", "all": "Tradetape on"}
ENV = {"TRADETAPE_BCRYPT_ROUNDS": "4", "TRADETAPE_MAX_BOTS_PER_USER": str(PER_USER),
       "TRADETAPE_STARTING_BALANCE": "100000",
       "TRADETAPE_SECRET_KEY": "bench-live-secret-key-0123456789abcdefghij",
       # one folder for this process (seeding) and the servers (run in folders of their
       # own): the audit key that seals the copied events, the master key of the data keys
       "TRADETAPE_KEY_DIR": str(ROOT / "var" / "keys")}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def config_of(k: int):
    """The k-th bot's configuration: a small DCA, every few bots a little different."""
    from domain.dca import DcaConfig

    data = {"pair": "BTC/USDT", "base_order_quote": str(20 + k % 7 * 5),
            "safety_order_quote": str(10 + k % 5 * 5), "max_safety_orders": 1 + k % 4,
            "price_deviation_pct": str(Decimal("0.2") + Decimal(k % 9) / 10),
            "safety_volume_scale": "1.5", "safety_step_scale": "1.2",
            "take_profit_pct": str(Decimal("0.2") + Decimal(k % 11) / 10)}
    if k % 3 == 1:
        data["stop_loss_pct"] = str(2 + k % 4)
    if k % 10 == 7:
        data["trailing_take_profit_pct"] = "0.1"
    return DcaConfig.from_mapping(data)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- seeding --------------------------------------------------------------------------------


def email(u: int) -> str:
    return f"bench-live-{u}@example.com"


def seed_through_application(url: str, users: int, first_bot: int) -> None:
    """``users`` users through identity (registration: a verified user with a funded paper
    account), their bots through the trading application's commands (create: enrolled in
    the owner's roster, its limit checked; start)."""
    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ({**os.environ, "TRADETAPE_DATABASE_URL": url})
    runtime = open_runtime(settings)
    trading = runtime.trading
    try:
        for u in range(users):
            user_id = runtime.identity.register(email(u), PASSWORD, verified=True,
                                                actor="system")
            owner = str(user_id)
            account = str(runtime.identity.get_user(user_id).paper_account_id)
            for j in range(PER_USER):
                k = first_bot + u * PER_USER + j
                bot_id = trading.create_bot(owner_id=owner, name=f"bench {k}",
                                            config=config_of(k), exchange_account_id=account,
                                            max_bots=PER_USER)
                trading.start_bot(bot_id, actor=owner)
            if u % 100 == 99:
                say(f"  seeded {(u + 1) * PER_USER} bots through the application")
    finally:
        runtime.stop()


def seed_by_copy(url: str, users: int) -> int:
    """``users`` copies of ``TEMPLATES`` template users (10 bots each, configurations that
    differ from one template to the next), written with COPY."""
    started = time.perf_counter()
    templates = [template(0, [config_of(t * PER_USER + j) for j in range(PER_USER)],
                          trade=False) for t in range(min(TEMPLATES, users))]
    say(f"  {len(templates)} template users made in {time.perf_counter() - started:.1f} s")
    return copy_users(url, users, [Cloner(owner, rows) for owner, rows in templates],
                      progress=lambda text: say(f"  {text}"))


def seed(url: str, bots: int, api_users: int, postgres: bool) -> float:
    """N bots, 10 per user; the first ``api_users`` users through the application (they log
    in), the others copied (PostgreSQL) or also through the application (SQLite)."""
    started = time.perf_counter()
    users = (bots + PER_USER - 1) // PER_USER
    registered = min(users, api_users) if postgres else users
    copied = users - registered
    if copied:
        seed_by_copy(url, copied)
    seed_through_application(url, registered, copied * PER_USER)
    if copied:
        say(f"  rebuilding the read models: {rebuild_projections(url):.1f} s")
    return time.perf_counter() - started


# --- the processes and what is sampled from outside ----------------------------------------


class Roles(Processes):
    """drill_kill's processes, the engine (or ``all``) run through the step probe."""

    def __init__(self, url: str, folder: Path, speed: float,
                 nice: dict[str, int] | None = None):
        super().__init__(url, folder, lease_seconds=10, speed=speed)
        self.nice = {role: n for role, n in (nice or {}).items() if n}  # role: --nice N
        self.env.update(ENV)
        self.env["TRADETAPE_KEY_DIR"] = os.environ["TRADETAPE_KEY_DIR"]  # as seeded
        # Every run replays the same market, the shipped month from its first candle on,
        # starting when the processes are launched: with the server's fixed epoch the
        # candles a run saw depended on the time of day (2.7x more events/s in one run
        # than in another of the same size).
        self.env["TRADETAPE_FEED_EPOCH"] = datetime.now(UTC).isoformat()
        self.steps = folder / "steps.jsonl"

    def command(self, name: str) -> list[str]:
        command = super().command(name)
        if name in self.nice:
            command += ["--nice", str(self.nice[name])]
        if name in ("engine", "all"):  # the same command line, its steps written down
            return [sys.executable, str(ROOT / "scripts/live_probe.py"), str(self.steps),
                    *command[1:]]
        return command

    def launch(self, name: str, timeout: float = 600) -> float:
        """Start ``name``; seconds until it is ready."""
        began = time.perf_counter()
        for attempt in range(10):
            self.start(name)
            try:
                self.wait_started(name, READY[name], timeout)
                break
            except SystemExit as error:  # a shared server out of connections: try again
                if "too many clients" not in str(error) or attempt == 9:
                    raise
                say(f"  {name}: {str(error).splitlines()[-1][:160]}; starting it again")
                time.sleep(5)
        if name in ("api", "all"):
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health",
                                                timeout=5):
                        break
                except urllib.error.HTTPError:  # amber or red: answering all the same
                    break
                except OSError:
                    time.sleep(0.1)
        return time.perf_counter() - began


def patiently(make, tries: int = 20):
    """``make()``, tried again while the shared PostgreSQL server is out of connections
    (other sessions on a development machine)."""
    for attempt in range(tries):
        try:
            return make()
        except Exception as error:
            if "too many clients" not in str(error) or attempt == tries - 1:
                raise
            time.sleep(3)
    return None


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, RSS in MB) of process ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    rss = next((int(line.split()[1]) / 1024 for line in status.splitlines()
                if line.startswith("VmRSS:")), 0.0)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss


class LogWatch:
    """The log's head and the slowest projection's position, from the database, sampled
    every 0.5 s on a thread of its own from the start (so that a lag that began before the
    measured window is timed from when it began, not from the window's start)."""

    def __init__(self, url: str):
        from application.bootstrap import open_trading
        from application.settings import parse_database_url
        from projections.store import TRACKING, open_view_store

        self.trading = open_trading(url)
        self.views = open_view_store(parse_database_url(url))
        self.tracking = f"SELECT min(position) FROM {self.views.q(TRACKING)}"
        self.heads: list[tuple[float, int]] = []  # (time, head), every sample
        self.behind: list[tuple[float, int, float]] = []  # (time, events, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def head(self) -> int:
        return self.trading.recorder.max_notification_id() or 0

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            head = self.head()
            position = self.views.query(self.tracking)[0][0] or 0
            now = time.monotonic()
            self.heads.append((now, head))
            # the first event not yet projected was in the log since the first sample whose
            # head reached it (at most a sample late)
            since = next((t for t, h in self.heads if h > position), now)
            self.behind.append((now, max(0, head - position), now - since))

    def within(self, t0: float, t1: float) -> tuple[list[int], list[float]]:
        """(events behind, seconds behind) of the samples from ``t0`` to ``t1``."""
        window = [(e, s) for t, e, s in self.behind if t0 <= t <= t1]
        return [e for e, _ in window], [s for _, s in window]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.views.close()
        self.trading.close()


# --- the second client -----------------------------------------------------------------------


@dataclass
class ApiLoad:
    """GraphQL ``portfolio`` and ``bots(first: 50)`` at ``rate``/s, taking turns, on a
    thread of its own (its own event loop) until stopped."""

    port: int
    tokens: list[str]
    rate: float
    until: float  # time.monotonic() when the measured window ends
    turn: float = API_TURN_S  # seconds of one query's turn
    results: dict[str, list[Result]] = field(default_factory=lambda: {"portfolio": [],
                                                                       "bots": []})
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    ended: str | None = None  # why the load ended before it was stopped (the api gone)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        """The api going away under the load (it exited, or the run stops it) ends the load
        in one line, not a thread's traceback: the run reports an exited process itself."""
        try:
            asyncio.run(self._run())
        except (OSError, EOFError) as error:
            self.ended = f"{type(error).__name__}: {error}"
            if not self._stop.is_set():
                say(f"  the api load ended: {self.ended}")

    async def _run(self) -> None:
        queries = [("portfolio", PORTFOLIO), ("bots", BOTS)]
        turn = 0
        while not self._stop.is_set() and self.until - time.monotonic() > 1:
            name, query = queries[turn % 2]
            requests = [graphql_request(self.port, query, t) for t in self.tokens]
            seconds = min(self.turn, self.until - time.monotonic())
            self.results[name].append(await open_loop(
                name, self.port, requests, rate=self.rate, seconds=seconds,
                connections=16, graphql=True))
            turn += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.turn * 3)

    def figures(self, name: str) -> dict:
        runs = self.results[name]
        latencies = [x for r in runs for x in r.latencies]
        due = sum(self.rate * r.seconds for r in runs) or 1
        return {"answered_pct": round(len(latencies) / due * 100, 1),
                "rate": round(len(latencies) / (sum(r.seconds for r in runs) or 1), 1),
                "p50_ms": _ms(percentile(latencies, 50)), "p99_ms": _ms(percentile(latencies, 99)),
                "failures": sum(r.failures for r in runs),
                "overloaded": sum(r.overloaded_after is not None for r in runs),
                "first_failure": next((r.first_failure for r in runs if r.failures), "")}


def write_slow_answers(path: Path, load: ApiLoad) -> None:
    """Each turn of the load, a line: its query, its window (Unix times) and its answers
    slower than ``SLOW_S`` as [due, seconds]: beside ``steps.jsonl`` they show whether the
    slow answers came with the engine's heavy steps, the projections' catch-up or neither."""
    with path.open("w") as out:
        for name, runs in load.results.items():
            for r in runs:
                out.write(json.dumps({"q": name, "window": r.window, "slow": r.slow}) + "\n")


# --- one run ---------------------------------------------------------------------------------


def check(roles: Roles, names: list[str], began: float, args) -> None:
    """Stop waiting when a process exited or the first step takes too long."""
    if time.time() - began > args.first_timeout:
        raise SystemExit(f"no first step within {args.first_timeout:g} s")
    ended = [name for name in names if roles.running[name].poll() is not None]
    if ended:
        raise SystemExit(f"{', '.join(ended)} exited (logs in {roles.folder})")


def live_leases(leases: Leases) -> int:
    """Bots leased by a live worker (a killed engine's leases stay until they expire)."""
    alive = leases.alive()
    return sum(worker in alive for worker in leases.held().values())


def all_leased(url: str, bots: int, postgres: bool, check) -> float:
    """When (Unix time) the engine held a lease on every bot (0 on SQLite: one process
    trades them all from its first step)."""
    if not postgres:
        return 0.0
    leases = patiently(lambda: Leases(url))
    try:
        seen, since = -1, time.monotonic()
        while (held := live_leases(leases)) < bots:
            if held != seen:
                seen, since = held, time.monotonic()
            elif held and time.monotonic() - since > 30:  # some bots no longer run
                say(f"  {held} of {bots} bots leased, no more for 30 s")
                break
            check()
            time.sleep(0.2)
        return time.time()
    finally:
        leases.conn.close()


def read_steps(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def run(url: str, bots: int, args, folder: Path, postgres: bool) -> dict:
    roles = Roles(url, folder, 60 * args.speed,
                  {"engine": args.nice_engine, "projections": args.nice_projections})
    names = ["projections", "engine", "api"] if postgres else ["all"]
    watch = load = None
    row: dict = {"bots": bots}
    try:
        for name in names:
            row[f"start_{name}_s"] = round(roles.launch(name), 2)
            say(f"  {name} ready in {row[f'start_{name}_s']} s")
        pids = {name: roles.running[name].pid for name in names}
        api = "api" if postgres else "all"
        SERVER_PIDS[roles.port] = pids[api]  # bench_api's CPU time per request
        tokens = ([login(roles.port, 0, email(u), PASSWORD)
                   for u in range(min(args.api_users, (bots + PER_USER - 1) // PER_USER))]
                  if args.api_rate else [])
        watch = patiently(lambda: LogWatch(url))
        began = time.time()
        leased = all_leased(url, bots, postgres, lambda: check(roles, names, began, args))
        if leased:
            row["leased_s"] = round(leased - began, 2)
            say(f"  every bot leased {row['leased_s']} s after the api was ready")

        while not any(s["n"] and s["t"] - s["s"] >= leased for s in read_steps(roles.steps)):
            check(roles, names, began, args)  # until a close every bot took part in
            time.sleep(0.2)
        time.sleep(args.warm_up)
        t0, wall0, head0 = time.monotonic(), time.time(), watch.head()
        # the warm-up's longest step: on a fresh schema the first close, every bot opening
        # its first deal (it may have begun before the leases were seen from here)
        first = max((s for s in read_steps(roles.steps) if s["t"] < wall0), key=lambda s: s["s"])
        row["first_step_s"], row["first_step_events"] = round(first["s"], 2), first["e"]
        say(f"  the warm-up's longest step: {first['s']:.1f} s ({first['e']} events)")
        if tokens:
            load = ApiLoad(roles.port, tokens, args.api_rate, t0 + args.seconds,
                           min(API_TURN_S, args.seconds / 2))  # both queries take a turn
            load.start()
        stats0 = {name: proc_stat(pid) for name, pid in pids.items()}
        time.sleep(args.seconds)
        t1, wall1, head1 = time.monotonic(), time.time(), watch.head()
        stats1 = {name: proc_stat(pid) for name, pid in pids.items()}
        exited = [name for name in names if roles.running[name].poll() is not None]
        if exited:
            row["error"] = f"{', '.join(exited)} exited during the run (logs in {folder})"
    finally:
        if load is not None:  # before the api stops under it
            load.stop()
            write_slow_answers(folder / "api.jsonl", load)
        for name in reversed(list(roles.running)):
            roles.stop(name)
        if watch is not None:
            watch.close()
    window = [s for s in read_steps(roles.steps) if wall0 <= s["t"] <= wall1]
    lags = [lag for s in window for lag in s["lags"]]
    behind, behind_s = watch.within(t0, t1)
    seconds = t1 - t0
    row.update({
        "seconds": round(seconds, 1),
        "candles_per_s": round(sum(s["n"] for s in window) / seconds, 2),
        "step_p50_ms": _ms(percentile([s["s"] for s in window], 50)),
        "step_p99_ms": _ms(percentile([s["s"] for s in window], 99)),
        "lag_p50_s": _s(percentile(lags, 50)), "lag_p99_s": _s(percentile(lags, 99)),
        "events_per_s": round((head1 - head0) / seconds, 1),
        "projection_lag_p50": percentile(behind, 50),
        "projection_lag_max": max(behind, default=None),
        "projection_lag_p50_s": _s(percentile(behind_s, 50)),
        "projection_lag_max_s": _s(max(behind_s, default=None)),
        "heavy": heavy_steps(window),
        "processes": {name: {"cpu_pct": round((stats1[name][0] - stats0[name][0])
                                              / seconds * 100),
                             "rss_mb": round(stats1[name][1])} for name in names}})
    if load is not None:
        row["api"] = {name: load.figures(name) for name in ("portfolio", "bots")}
    return row


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _s(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


# --- the parent ----------------------------------------------------------------------------


def schema_of(url: str, n: int, several: bool) -> str:
    """The URL's schema (``_N`` after it for several sizes), else ``bench_live_N``."""
    from application.settings import parse_database_url

    given = parse_database_url(url).env.get("POSTGRES_SCHEMA")
    return f"bench_live_{n}" if not given else f"{given}_{n}" if several else given


def drop_schema(url: str) -> None:
    """The schema, and its key files with it (``TRADETAPE_KEY_DIR``: the audit, master and
    secret keys made for it): left behind, a set piled up in the key folder at every run
    with ``--drop``, the keys of schemas that no longer exist."""
    import psycopg

    from adapters.security.key_files import key_file_base
    from application.settings import _connect_kwargs, parse_database_url

    database = parse_database_url(url)
    env = database.env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{env["POSTGRES_SCHEMA"]}" CASCADE')
    base = key_file_base(database, os.environ)
    if base is not None:  # ``<host>-<port>-<db>-<schema>.<kind>``: this schema's alone
        for path in base.parent.glob(f"{base.name}.*"):
            path.unlink(missing_ok=True)


def targets(row: dict, args) -> list[tuple[str, bool]]:
    """Each target of issue 15 this run measured: (what, met)."""
    if "error" in row:
        return [(f"{row['bots']} bots: {row['error']}", False)]
    kept = (row["candles_per_s"] >= KEPT * args.speed and row["lag_p99_s"] is not None
            and row["lag_p99_s"] < MAX_LAG_S)
    found = [(f"{row['bots']} bots keep up with {args.speed:g} candles/s: "
              f"{row['candles_per_s']} kept, lag p99 {row['lag_p99_s']} s "
              f"(< {MAX_LAG_S:g} s)", kept)]
    for name, api in row.get("api", {}).items():
        held = (api["answered_pct"] >= KEPT * 100 and api["p99_ms"] is not None
                and api["p99_ms"] < API_P99_MS and not api["failures"])
        found.append((f"GraphQL {name} at {args.api_rate:g} req/s: {api['rate']} answered/s, "
                      f"p99 {api['p99_ms']} ms (< {API_P99_MS:g}), {api['failures']} failed",
                      held))
    lag = row["projection_lag_max_s"]
    found.append((f"projections within {PROJECTION_LAG_S:g} s of the log: at most {lag} s "
                  f"({row['projection_lag_max']} events) behind",
                  lag is not None and lag < PROJECTION_LAG_S))
    return found


COLUMNS = [("bots", "bots"), ("candles_per_s", "candles/s"), ("step_p50_ms", "step p50 ms"),
           ("step_p99_ms", "step p99 ms"), ("lag_p50_s", "lag p50 s"), ("lag_p99_s", "lag p99 s"),
           ("events_per_s", "events/s"), ("projection_lag_p50_s", "proj lag p50 s"),
           ("projection_lag_max_s", "proj lag max s"), ("projection_lag_max", "proj max events"),
           ("leased_s", "leased s"), ("first_step_s", "warm-up's longest step s"),
           ("first_step_events", "its events"), ("seed_s", "seed s")]


def heavy_steps(window: list[dict]) -> dict | None:
    """The waves' steps (>= ``HEAVY_STEP`` events): they set the lag's p99. Their wall time
    and how much of it the loop's thread computed (``c``), the rest waited."""
    heavy = [s for s in window if s["e"] >= HEAVY_STEP]
    if not heavy:
        return None
    return {"steps": len(heavy), "events": sum(s["e"] for s in heavy),
            "wall_s": round(sum(s["s"] for s in heavy), 2),
            "processor_s": round(sum(s.get("c", 0.0) for s in heavy), 2),
            "appending_s": round(sum(s.get("a", 0.0) for s in heavy), 2)}


def print_row(store: str, row: dict) -> None:
    if "error" in row and "candles_per_s" not in row:
        print(f"{store} | {row['bots']} | {row['error']}")
        return
    print(" | ".join([store, *(str(row.get(key)) for key, _ in COLUMNS)]))
    starts = ", ".join(f"{k[6:-2]} {v} s" for k, v in row.items() if k.startswith("start_"))
    procs = ", ".join(f"{name} {p['cpu_pct']}% CPU / {p['rss_mb']} MB"
                      for name, p in row["processes"].items())
    print(f"    started: {starts}; per process: {procs}")
    if heavy := row.get("heavy"):
        wall, cpu = heavy["wall_s"], heavy["processor_s"]
        print(f"    heavy steps (>= {HEAVY_STEP:,} events): {heavy['steps']}, "
              f"{heavy['events']:,} events in {wall} s, of which the loop's thread computed "
              f"{cpu} s ({cpu / wall:.0%}) and waited the rest (database, a core, the GIL); "
              f"the appending thread computed {heavy.get('appending_s', 0.0)} s beside it")
    for name, api in row.get("api", {}).items():
        print(f"    GraphQL {name}: {api['rate']}/s answered ({api['answered_pct']}% of those "
              f"due), p50 {api['p50_ms']} ms, p99 {api['p99_ms']} ms, {api['failures']} "
              f"failed, {api['overloaded']} turns overloaded"
              + (f" ({api['first_failure'][:120]})" if api["first_failure"] else ""))


def measure(store: str, url: str, n: int, args, tmp: Path, fresh: bool) -> dict:
    postgres = store == "postgresql"
    seeded = None
    # a kept schema's keys stay with the checkout; a temporary SQLite file's go with it
    os.environ["TRADETAPE_KEY_DIR"] = ENV["TRADETAPE_KEY_DIR"] if postgres else str(tmp)
    if not postgres or ensure_schema(url, fresh):
        say(f"{store}: seeding {n} bots")
        seeded = round(seed(url, n, args.api_users, postgres), 1)
        say(f"  seeded in {seeded} s")
    else:
        say(f"{store}: {n} bots already seeded ({url}; --fresh seeds again)")
    folder = Path(tempfile.mkdtemp(prefix=f"{store}-{n}-", dir=tmp))
    try:
        row = run(url, n, args, folder, postgres)
    except (SystemExit, Exception) as error:  # the other sizes and stores still run
        row = {"bots": n, "error": f"{type(error).__name__}: {error}"}
    row["seed_s"] = seeded if seeded is not None else "kept"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", default="1000", help="N, or several: 300,1000")
    parser.add_argument("--speed", type=float, default=1.0, help="candles per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per run")
    parser.add_argument("--database", default=DEFAULT_URL,
                        help="a PostgreSQL URL (its schema, else bench_live_N)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--fresh", action="store_true",
                        help="drop the kept schema bench_live_N and seed it again")
    parser.add_argument("--drop", action="store_true", help="drop the schema after the run")
    parser.add_argument("--keep", action="store_true",
                        help="keep the processes' logs and step/answer files after a run "
                             "that met every target too")
    parser.add_argument("--api-rate", type=float, default=500.0,
                        help="GraphQL requests/s of the second client (0: none)")
    parser.add_argument("--api-users", type=int, default=10,
                        help="users registered through identity, who log in for the load")
    parser.add_argument("--warm-up", type=float, default=5.0,
                        help="seconds after the first close before measuring")
    parser.add_argument("--first-timeout", type=float, default=900.0,
                        help="seconds the first step (every bot opens a deal) may take")
    parser.add_argument("--nice-engine", type=int, default=0, metavar="N",
                        help="serve --nice N for the engine process (default 0: as today)")
    parser.add_argument("--nice-projections", type=int, default=0, metavar="N",
                        help="serve --nice N for the projections process (default 0)")
    args = parser.parse_args()
    os.environ.update(ENV)  # the seeding in this process registers users as serve would
    sizes = [int(n) for n in args.bots.split(",")]
    rows: list[tuple[str, dict]] = []
    tmp = tempfile.mkdtemp(prefix="bench-live-")  # the processes' logs, SQLite files
    for n in sizes:
        url = with_schema(args.database, schema_of(args.database, n, len(sizes) > 1))
        try:
            rows.append(("postgresql", measure("postgresql", url, n, args, Path(tmp),
                                               args.fresh)))
        finally:
            if args.drop:
                drop_schema(url)
        if not args.no_sqlite:
            rows.append(("sqlite", measure("sqlite", f"sqlite:///{tmp}/bench-{n}.sqlite", n,
                                           args, Path(tmp), True)))
    print(f"bench_live: {args.speed:g} candles/s, {args.seconds:g} s measured per run "
          f"(after the first close and {args.warm_up:g} s), GraphQL at {args.api_rate:g} "
          f"req/s from a second client; niceness engine {args.nice_engine}, projections "
          f"{args.nice_projections}, api 0")
    print(" | ".join(["store", *(title for _, title in COLUMNS)]))
    for store, row in rows:
        print_row(store, row)
    met = bool(rows)
    for store, row in rows:
        for text, ok in targets(row, args):
            if store == "postgresql":
                met = met and ok
            print(f"{'MET   ' if ok else 'MISSED'} {store}: {text}")
    if met and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:  # a run that missed (or --keep) keeps the processes' logs to be looked at
        print(f"(the processes' logs: {tmp})")
    print(f"{'MET' if met else 'MISSED'}: {','.join(map(str, sizes))} bots at "
          f"{args.speed:g} candles/s on PostgreSQL (one engine, one api, one projections "
          f"process): p99 lag < {MAX_LAG_S:g} s, GraphQL {args.api_rate:g} req/s p99 < "
          f"{API_P99_MS:g} ms, projections within {PROJECTION_LAG_S:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
