"""Benchmark: how long ``tradetape serve`` takes from launch to ``/health`` green on a big log.

    .venv/bin/python scripts/bench_start.py --bots 10000 --events 10000000 \
        [--database postgresql://postgres@127.0.0.1:5432/test?schema=bench_start_...] \
        [--fresh] [--starts 2] [--profile] [--timeout 300]

The log (kept in its own PostgreSQL schema for the next runs unless ``--fresh``) holds
``--bots`` running paper bots, 10 per user, each user with one paper account, and about
``--events`` events. It is made by the application itself for one user (an account, a
deposit, 10 bots with different take-profits, paper trading on a saw-tooth market until the
user's share of the events is reached, ending with deals and resting orders open), then
that user's stored events are copied for every other user with every id renamed (ids
derived from an owner, like its bot roster's, derived again): the same events the
application would write for them, written with ``COPY`` instead of one save at a time.
The views are made the same way: the first user's by a rebuild of its events alone, every
other user's copied from them with the same ids renamed (scripts/bench_start_views.py;
equal to a rebuild of the whole log, tested). ``--rebuild`` rebuilds every projection over
the whole log instead (``tradetape projections rebuild``), and says how long it took.

Then ``serve`` is started ``--starts`` times (stopped gracefully in between: the first start
after seeding takes the snapshots the next ones read); each line says seconds to the first
answer of ``/health``, to green, and when each of its parts was first green. The last line says
``MET`` or ``MISSED`` for green within 5 s on the last start. ``--profile`` also runs one
start in this process under cProfile and prints the top of it. The machine may be shared:
compare the ratios of one run rather than figures of different runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))  # bench_start_views, also when imported by tests

BASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
GOAL_SECONDS = 5.0
BOTS_PER_USER = 10
SEEDED_LAG = 100_000  # views further behind the log than this: the seed did not finish
T0 = datetime(2025, 11, 1, tzinfo=UTC)
UUID_TEXT = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                       rb"|[0-9a-f]{32}")


def log(text: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


# --- the template: one user's history, made by the application ---------------------------

def bot_config(i: int, price: Decimal):
    from domain.dca import DcaConfig

    return DcaConfig.from_mapping({
        "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
        "max_safety_orders": 4, "price_deviation_pct": str(Decimal("0.4") + i * Decimal("0.05")),
        "safety_volume_scale": "1.5", "safety_step_scale": "1.2",
        "take_profit_pct": str(Decimal("0.3") + i * Decimal("0.07"))})


def market_price() -> Decimal:
    """Where the shipped series the server replays trades (its first close)."""
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series
    from application.server_settings import DEFAULT_FEED

    return Decimal(str(load_candles(shipped_series(DEFAULT_FEED)).close[0])).quantize(
        Decimal("0.01"))


def template(events_per_user: int):
    """One user's stored events, made by the application on a memory store."""
    from adapters.clock import SequentialIds, SettableClock
    from adapters.exchanges.paper import PaperExchange
    from application.bootstrap import open_trading
    from application.paper_trading import PaperTrading
    from application.replay import read_log

    clock, ids = SettableClock(T0), SequentialIds("bench-start-template")
    trading = open_trading("memory", clock=clock, ids=ids)
    owner = str(ids.new_id())
    account = trading.open_account(owner_id=owner, exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("1000000"), actor=owner)
    price = market_price()
    for i in range(BOTS_PER_USER):
        bot_id = trading.create_bot(owner_id=owner, name=f"bot {i}", config=bot_config(i, price),
                                    exchange_account_id=str(account))
        trading.start_bot(bot_id, actor=owner)
    paper = PaperTrading(trading, ids, lambda pair, q, b: PaperExchange(
        pair, quote_balance=q, base_balance=b))
    paper.resume()
    # A saw-tooth around the market: deals open, ladder down, close at their targets; the
    # last candles fall so that deals and resting orders are open at the end.
    saw = [Decimal(x) for x in ("1", "0.995", "0.99", "0.985", "0.98", "0.99", "1.005",
                                "1.015")]
    n = 0
    while (trading.recorder.max_notification_id() or 0) < events_per_user or n % 8 != 5:
        o, c = price * saw[n % 8], price * saw[(n + 1) % 8]
        clock.current = T0 + timedelta(minutes=n + 1)
        paper.on_candle("BTC/USDT", int(clock.current.timestamp() * 1000) - 60_000, o,
                        max(o, c), min(o, c), c, clock.current)
        n += 1
    rows = [(n.originator_id, n.originator_version, n.topic, bytes(n.state))
            for n in read_log(trading)]
    trading.close()
    return owner, rows


class Cloner:
    """The template's events for another user: every id it names renamed, the ids derived
    from the owner derived again. Each state is cut once at its ids, so a copy is a join."""

    def __init__(self, owner: str, rows: list[tuple]):
        from domain.risk import risk_id
        from domain.rosters import roster_id

        self.owner = uuid.UUID(owner)
        self.derived = {roster_id(owner): roster_id, risk_id(owner): risk_id}
        self.rows = [(oid, version, topic, *_cut(state)) for oid, version, topic, state in rows]

    def cut_text(self, text: str) -> str | tuple:
        """A view's text: as it is when it names no id, else cut like a state."""
        parts, slots = _cut(text.encode())
        return (parts, slots) if slots else text

    def mapping(self, k: int) -> dict[uuid.UUID, uuid.UUID]:
        owner = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-start:{k}:owner")
        names: dict[uuid.UUID, uuid.UUID] = {self.owner: owner}
        for old, derive in self.derived.items():
            names[old] = derive(str(owner))
        return names

    def renamer(self, k: int) -> Callable[[uuid.UUID], uuid.UUID]:
        """User ``k``'s name for each id of the template (the same in events and views)."""
        names = self.mapping(k)

        def new(old: uuid.UUID) -> uuid.UUID:
            found = names.get(old)
            if found is None:
                found = names[old] = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-start:{k}:{old}")
            return found

        new.names = names  # type: ignore[attr-defined] (what it renamed so far)
        return new

    def clone(self, k: int, new: Callable[[uuid.UUID], uuid.UUID] | None = None):
        new = new or self.renamer(k)
        for oid, version, topic, parts, slots in self.rows:
            yield new(oid), version, topic, _paste(parts, slots, new)


def _view_renamer(new: Callable[[uuid.UUID], uuid.UUID],
                  template_id: dict[uuid.UUID, uuid.UUID]) -> Callable[[tuple], str]:
    """A view text (cut at its ids, which are the first user's) with ``new``'s names."""
    def rename(cut: tuple) -> str:
        return _paste(*cut, lambda first: new(template_id[first])).decode()

    return rename


def _cut(data: bytes) -> tuple[list[bytes], list[tuple[uuid.UUID, bool]]]:
    """``data`` cut at the ids it names: the pieces between them, and each id (and whether
    it was written as 32 hex digits)."""
    parts, slots, last = [], [], 0
    for match in UUID_TEXT.finditer(data):
        parts.append(data[last:match.start()])
        text = match.group().decode()
        slots.append((uuid.UUID(text), len(text) == 32))
        last = match.end()
    parts.append(data[last:])
    return parts, slots


def _paste(parts: list[bytes], slots, new: Callable[[uuid.UUID], uuid.UUID]) -> bytes:
    pieces = [parts[0]]
    for (old, is_hex), part in zip(slots, parts[1:], strict=True):
        renamed = new(old)
        pieces.append((renamed.hex if is_hex else str(renamed)).encode())
        pieces.append(part)
    return b"".join(pieces)


def seed(url: str, bots: int, events: int, projections: list[str] | None = None,
         rebuild: bool = False) -> int:
    """Seed the log; its views are copied from the first user's (scripts/bench_start_views.py)
    unless ``rebuild`` or ``projections`` (then those, else all, are rebuilt over the whole
    log, as an operator would, and timed)."""
    from application.bootstrap import open_trading
    from application.settings import parse_database_url

    users = max(1, bots // BOTS_PER_USER)
    started = time.perf_counter()
    owner, rows = template(max(1, events // users))
    log(f"template: {len(rows)} events for one user of {BOTS_PER_USER} bots "
        f"({time.perf_counter() - started:.1f} s)")
    cloner = Cloner(owner, rows)
    trading = open_trading(url)  # creates the tables (and the audit key) as serve would
    copying = not rebuild and projections is None
    log_copy = LogCopy(trading, parse_database_url(url).env.get("POSTGRES_SCHEMA", "public"))
    written = 0
    with trading.recorder.datastore.get_connection() as conn:
        # Copying views: the first two users' events are rebuilt first (_template_views)
        rebuilt_first = min(users, 2) if copying else 0
        views = previous = None
        for k in range(users):
            new = cloner.renamer(k)
            copied = list(cloner.clone(k, new))
            with conn.cursor() as cursor:
                if views is None:
                    log_copy.write(cursor, copied)
                else:
                    previous = views.write_user(cursor, log_copy, k, new, copied, previous,
                                                with_events=True)
            conn.commit()
            written += len(copied)
            if k % max(1, users // 10) == 0:
                rate = written / (time.perf_counter() - started)
                log(f"seeded {k + 1}/{users} users, {written} events ({rate:,.0f}/s)")
            if k + 1 == rebuilt_first:
                views = _template_views(url, conn, log_copy, cloner, len(rows), users)
                for j in range(rebuilt_first):  # their views again, as every user's are
                    with conn.cursor() as cursor:
                        renamer = cloner.renamer(j)
                        previous = views.write_user(cursor, log_copy, j, renamer, list(
                            cloner.clone(j, renamer)), previous, with_events=False)
                conn.commit()
        if views is not None:
            from bench_start_views import SeedViewError, move_tracking
            from psycopg.rows import tuple_row

            with conn.cursor(row_factory=tuple_row) as cursor:
                head = cursor.execute(f"SELECT max(notification_id) FROM {log_copy.table}"
                                      ).fetchone()[0]
                if head != written:
                    raise SeedViewError(f"the log's head is {head} after {written} events")
                move_tracking(cursor, log_copy.schema, head)
            conn.commit()
    trading.close()
    if copying:
        log(f"seeded {written} events and their views in {time.perf_counter() - started:.1f} s")
        return written
    log(f"seeded {written} events in {time.perf_counter() - started:.1f} s; rebuilding "
        "the projections")
    began = time.perf_counter()
    rebuild_projections(url, projections)
    log(f"projections rebuilt in {time.perf_counter() - began:.1f} s")
    return written


def rebuild_projections(url: str, projections: list[str] | None) -> None:
    subprocess.run([str(ROOT / ".venv/bin/tradetape"), "projections", "rebuild",
                    *(projections or []), "--database", url], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


class LogCopy:
    """Events (and their seals) written with ``COPY``."""

    def __init__(self, trading, schema: str):
        self.schema = schema
        self.table = f'"{schema}"."{trading.recorder.events_table_name}"'
        self.key = trading.recorder.sealing_key()

    def write(self, cursor, copied: list[tuple], recorded: list | None = None) -> None:
        """``recorded``: when each was recorded (else now, by the database)."""
        from adapters.event_store.sealing import SEALS_TABLE, canonical_id

        columns = "originator_id, originator_version, topic, state"
        if recorded is None:
            with cursor.copy(f"COPY {self.table} ({columns}) FROM STDIN") as copy:
                for row in copied:
                    copy.write_row(row)
        else:
            with cursor.copy(f"COPY {self.table} ({columns}, recorded_at) FROM STDIN") as copy:
                for row, at in zip(copied, recorded, strict=True):
                    copy.write_row((*row, at))
        if self.key is not None:
            with cursor.copy(f'COPY "{self.schema}"."{SEALS_TABLE}" FROM STDIN') as copy:
                for oid, version, topic, state in copied:
                    copy.write_row((oid, version, self.key.fingerprint, self.key.seal(
                        canonical_id(oid), version, topic, state)))


def _template_views(url: str, conn, log_copy: LogCopy, cloner: Cloner, events: int,
                    users: int):
    """The views every user's are copied from, made by a rebuild of the first two users'
    events: the first user's rows are what a user followed by others holds (a later user's
    fills re-mark its open deals, settle its last step), the second's what the last user
    holds. The views are then emptied, to be written again user by user."""
    from bench_start_views import SeedViews
    from psycopg.rows import tuple_row

    began = time.perf_counter()
    rebuilt = min(users, 2)
    rebuild_projections(url, None)
    with conn.cursor(row_factory=tuple_row) as cursor:
        views = SeedViews(cursor, log_copy.schema, cloner, events, users,
                          [cloner.renamer(j) for j in range(rebuilt)])
        if users > 2:  # the second user becomes a middle one: recorded as the first was
            cursor.execute(
                f"UPDATE {log_copy.table} AS e SET recorded_at = f.recorded_at FROM "
                f"{log_copy.table} AS f WHERE e.notification_id > %s AND "
                "f.notification_id = e.notification_id - %s", (events, events))
    conn.commit()
    log(f"the first {rebuilt} users' views rebuilt in {time.perf_counter() - began:.1f} s")
    return views


def head_of(url: str) -> int:
    from application.bootstrap import open_trading

    trading = open_trading(url)
    try:
        return trading.recorder.max_notification_id() or 0
    finally:
        trading.close()


def ensure_schema(url: str, fresh: bool) -> bool:
    """True when the schema must be seeded."""
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    schema = env.get("POSTGRES_SCHEMA", "public")
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        found = conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                             "AND table_name = 'trading_events'", (schema,)).fetchone()
        if found is not None and not fresh:
            _check_seeded(conn, schema)
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return fresh or found is None


def _check_seeded(conn, schema: str) -> None:
    """A seed stopped half-way leaves a log whose views stand far behind it (copied views
    move their tracking to the head only at the end): refused, rather than timed."""
    head = conn.execute(f'SELECT max(notification_id) FROM "{schema}".trading_events'
                        ).fetchone()[0] or 0
    tracked = conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                           "AND table_name = 'projection_tracking'", (schema,)).fetchone()
    lowest = conn.execute(f'SELECT min(position) FROM "{schema}".projection_tracking'
                          ).fetchone()[0] if tracked else None
    if lowest is None or head - lowest > SEEDED_LAG:
        sys.exit(f"schema {schema} holds {head:,} events but its views stand at "
                 f"{lowest or 0:,}: a seed that did not finish; run again with --fresh")


# --- timing a start -----------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_start(url: str, timeout: float, logs: Path
               ) -> tuple[float | None, float | None, dict, dict[str, float]]:
    """(seconds to the first /health answer, seconds to green, the last health seen, seconds
    until each part was first green)."""
    port = free_port()
    env = {**os.environ, "TRADETAPE_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    out = (logs / f"serve-{port}.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen([str(ROOT / ".venv/bin/tradetape"), "serve", "--port",
                                str(port), "--database", url], stdout=out,
                               stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    first = green = None
    health: dict = {}
    parts: dict[str, float] = {}
    try:
        while time.perf_counter() - began < timeout and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                            timeout=5) as response:
                    health = json.loads(response.read())
            except urllib.error.HTTPError as error:  # red: 503 with the same body
                health = json.loads(error.read() or b"{}")
            except OSError:
                time.sleep(0.05)
                continue
            first = first or time.perf_counter() - began
            for name, part in health.items():
                if isinstance(part, dict) and part.get("status") == "green":
                    parts.setdefault(name, time.perf_counter() - began)
            if health.get("status") == "green":
                green = time.perf_counter() - began
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
    return first, green, health, parts


def profile_start(url: str) -> None:
    import cProfile
    import pstats

    from application.bootstrap import open_runtime
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ({"TRADETAPE_DATABASE_URL": url})
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    runtime = open_runtime(settings)
    opened = time.perf_counter() - began
    runtime.start()
    profiler.disable()
    log(f"profiled start: open {opened:.2f} s, start {time.perf_counter() - began:.2f} s")
    runtime.stop()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000,
                        help="running paper bots in the seeded log (10 per user; default 1000)")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="about this many events in the seeded log (default 1,000,000)")
    parser.add_argument("--database", default=None,
                        help="a PostgreSQL URL with its schema (default: the local test "
                             "database, schema bench_start_BOTS_EVENTS, kept for reruns)")
    parser.add_argument("--fresh", action="store_true",
                        help="drop that schema and seed it again")
    parser.add_argument("--starts", type=int, default=2,
                        help="serve starts timed one after another (the first after seeding "
                             "builds the snapshots; default 2)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a start may take before it counts as failed (300)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one start in this process (cProfile, on stderr)")
    parser.add_argument("--rebuild", action="store_true",
                        help="rebuild every projection over the whole seeded log (timed) "
                             "instead of copying the first user's views for the others")
    parser.add_argument("--projections", nargs="*", default=None,
                        help="rebuild only these after seeding (e.g. paper_book, to time a "
                             "resume alone with --profile: /health stays amber meanwhile)")
    args = parser.parse_args()
    url = args.database or f"{BASE_URL}?schema=bench_start_{args.bots}_{args.events}"
    if ensure_schema(url, args.fresh):
        seed(url, args.bots, args.events, args.projections, args.rebuild)
    head = head_of(url)
    print(f"log: {head:,} events, {args.bots:,} bots ({url})")
    if args.profile:
        profile_start(url)
    logs = ROOT / "var" / "bench_start"
    logs.mkdir(parents=True, exist_ok=True)
    green = None
    for n in range(1, args.starts + 1):
        first, green, health, parts = time_start(url, args.timeout, logs)
        kind = "the first" if n == 1 else "again"
        each = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in parts.items())
        if green is None:
            late = {name: part.get("status") for name, part in health.items()
                    if isinstance(part, dict) and part.get("status") != "green"}
            print(f"start {n} ({kind}): not green within {args.timeout:g} s (first green: "
                  f"{each or 'none'}; still not green: {json.dumps(late)}); engine loop: "
                  f"{json.dumps(health.get('engine_loop'))[:300]}")
            continue
        print(f"start {n} ({kind}): /health answers in {first:.2f} s, green in {green:.2f} s "
              f"(first green: {each})")
    met = green is not None and green <= GOAL_SECONDS
    print(f"{'MET' if met else 'MISSED'}: /health green within {GOAL_SECONDS:g} s with "
          f"{args.bots:,} bots and {head:,} events"
          f"{'' if green is None else f' ({green:.2f} s)'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
