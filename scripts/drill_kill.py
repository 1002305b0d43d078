"""Kill drill: processes of one PostgreSQL database killed with -9 while bots trade.

    .venv/bin/python scripts/drill_kill.py [--minutes 10] [--every 30] [--bots 20]
        [--lease-seconds 10] [--speed 3000] [--database URL] [--kills engine,projections]
        [--seed N] [--schema-prefix drill] [--keep]

Starts two ``serve --role engine`` workers, one ``--role api`` and one ``--role
projections`` on a fresh schema, seeds ``--bots`` running paper bots (two per account), then
every ``--every`` seconds kills one process at random (``--kills``: this sequence instead)
with SIGKILL and starts it again, as a supervisor would. At the end it stops everything,
lets the projections catch up, and checks:

- every bot resumes within the lease time: the drill watches each bot (lease table and log,
  every 0.1 s) and times every interruption, from the kill of the worker holding it (or from
  its lease let go, as when a worker joins and the shares even out, or expired) until a
  live worker leases it again (at most the lease time) and until it writes its next event
  (it trades again; the bots have a stop loss so that they keep writing);
- no client order id was used twice;
- no aggregate's versions have a gap;
- the read models equal a full rebuild of the log (row for row, every table).

Each check prints its figure and ``MET``/``MISSED``; the last line is ``MET`` when all are.
Before them it prints the lease tables' size after the run (rows, the worker rows of workers
alive, dead tuples, bytes): what the lease reaper leaves.
The database defaults to ``$TRADETAPE_TEST_POSTGRES_URL`` (else postgres@127.0.0.1/test);
the schema is made for the run and dropped after it, the logs removed after a run that
met every check (``--keep`` keeps both).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from drill_watch import Leases, Watch, resume_check, settle

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRADETAPE = Path(sys.executable).with_name("tradetape")
SECRET_KEY = "drill-secret-key-0123456789-abcdefghijklmnop"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ROLES = ("engine-1", "engine-2", "api", "projections")


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["schema"] = schema
    # four processes (and a restarted one) share the server's connections with others
    query.setdefault("pool_size", "3")
    query.setdefault("max_overflow", "3")
    return urlunsplit(parts._replace(query=urlencode(query)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """The four processes, each restartable; output in ``folder``."""

    def __init__(self, url: str, folder: Path, lease_seconds: float, speed: float):
        self.url, self.folder, self.speed = url, folder, speed
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRADETAPE_")}
        self.env.update(TRADETAPE_SECRET_KEY=SECRET_KEY, TRADETAPE_BCRYPT_ROUNDS="4",
                        TRADETAPE_LEASE_SECONDS=f"{lease_seconds:g}", PYTHONUNBUFFERED="1")
        self.port = free_port()
        self.running: dict[str, subprocess.Popen] = {}
        self.starts: Counter = Counter()
        self.exits: Counter = Counter()  # processes that exited by themselves

    def command(self, name: str) -> list[str]:
        """``tradetape serve --role ROLE`` for the process ``name`` (``engine-2``: an engine)."""
        role = name.split("-", maxsplit=1)[0]
        command = [str(TRADETAPE), "serve", "--role", role, "--database", self.url,
                   "--speed", f"{self.speed:g}"]
        if role in ("api", "all"):
            command += ["--port", str(self.port)]
        return command

    def start(self, name: str) -> None:
        self.starts[name] += 1
        log = self.folder / f"{name}-{self.starts[name]}.log"
        with log.open("wb") as out:
            self.running[name] = subprocess.Popen(self.command(name), stdout=out,
                                                  stderr=subprocess.STDOUT, env=self.env,
                                                  cwd=self.folder)

    def wait_started(self, name: str, line: str, timeout: float = 300) -> None:
        """Long: a process the server refuses (out of connections, shared with others)
        waits for it and starts when it accepts."""
        log = self.folder / f"{name}-{self.starts[name]}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in log.read_text(errors="replace"):
                return
            if self.running[name].poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"{name} did not start:\n{log.read_text(errors='replace')}")

    def kill(self, name: str) -> None:
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str) -> int:
        process = self.running[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                return -9
        return process.returncode

    def revive(self) -> None:
        """Start again, as a supervisor would, a process that exited by itself (one that
        found the shared PostgreSQL server out of connections exits with DATABASE_...)."""
        for name, process in list(self.running.items()):
            if process.poll() is not None:
                print(f"{name} exited by itself ({process.returncode}): started again",
                      flush=True)
                self.exits[name] += 1
                self.start(name)

    def errors(self) -> list[str]:
        """Tracebacks in any log (a killed process's last lines may be cut: not counted)."""
        return [f"{log.name}: Traceback" for log in sorted(self.folder.glob("*.log"))
                if "Traceback" in log.read_text(errors="replace")]


def patient(make, what: str, timeout: float = 300):
    """``make()``, tried again while the server, shared with others, has no connection to
    spare (the drill's own connections wait as its processes do)."""
    import psycopg

    deadline, delay, said = time.monotonic() + timeout, 0.5, False
    while True:
        try:
            return make()
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() > deadline:
                raise
            if not said:
                print(f"{what}: the server has no connection to spare, waiting", flush=True)
                said = True
            time.sleep(delay)
            delay = min(10.0, delay * 2)


def seed(url: str, bots: int) -> list:
    """``bots`` running paper bots, two per account, with ladders that differ."""
    from application.bootstrap import open_trading
    from domain.dca import DcaConfig

    trading = open_trading(url)
    made = []
    try:
        for n in range(bots):
            if n % 2 == 0:
                owner = f"drill-user-{n // 2}"
                account = trading.open_account(owner_id=owner, exchange="paper",
                                               quote_asset="USDT")
                trading.deposit(account, "USDT", Decimal("100000"), actor=owner)
            config = DcaConfig.from_mapping({
                "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
                "max_safety_orders": 3, "price_deviation_pct": f"{0.2 + 0.05 * (n % 5):.2f}",
                "safety_volume_scale": "1.2", "safety_step_scale": "1.1", "stop_loss_pct": "2",
                "take_profit_pct": f"{0.3 + 0.05 * (n % 4):.2f}"})
            bot_id = trading.create_bot(owner_id=owner, name=f"drill bot {n}", config=config,
                                        exchange_account_id=str(account))
            trading.start_bot(bot_id, actor=owner)
            made.append(bot_id)
    finally:
        trading.close()
    return made


def engine_of(processes: Processes, name: str) -> str | None:
    """The worker name ``name`` printed when it started."""
    log = processes.folder / f"{name}-{processes.starts[name]}.log"
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Tradetape engine worker "):
            return line.split()[3].rstrip(":")
    return None


def wait_projections(url: str, timeout: float = 120) -> int:
    """Until every projection applied the whole log; returns the head."""
    from application.bootstrap import open_trading
    from application.settings import parse_database_url
    from projections.store import TRACKING, open_view_store

    trading = open_trading(url)
    store = open_view_store(parse_database_url(url))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head = trading.recorder.max_notification_id() or 0
            positions = [p for _, p in store.query(
                f"SELECT name, position FROM {store.q(TRACKING)}")]
            if positions and min(positions) >= head:
                return head
            time.sleep(0.2)
        raise SystemExit("the projections did not catch up with the log")
    finally:
        store.close()
        trading.close()


def check_log(url: str) -> tuple[int, int]:
    """(client order ids used more than once, aggregates whose versions have a gap)."""
    from application.bootstrap import open_trading
    from application.replay import read_log
    from domain.orders import Order
    from domain.recording import topic_of

    trading = open_trading(url)
    try:
        ids = Counter(trading.mapper.to_domain_event(n).client_order_id
                      for n in read_log(trading, [topic_of(Order.Submitted)]))
        versions: dict = {}
        for n in read_log(trading):
            versions.setdefault(n.originator_id, []).append(n.originator_version)
        gaps = sum(sorted(v) != list(range(1, len(v) + 1)) for v in versions.values())
        return sum(count > 1 for count in ids.values()), gaps
    finally:
        trading.close()


def rebuild_differences(url: str, schema: str) -> list[str]:
    """Tables whose rows differ between the live views and a rebuild from the whole log
    (into a schema of its own)."""
    from application.bootstrap import open_trading
    from application.settings import parse_database_url, prepare
    from projections.registry import PROJECTIONS
    from projections.runner import Projector
    from projections.store import open_view_store

    rebuilt_db = parse_database_url(with_schema(url, schema + "_rebuilt"))
    prepare(rebuilt_db)
    trading = open_trading(url)
    live, rebuilt = open_view_store(parse_database_url(url)), open_view_store(rebuilt_db)
    try:
        Projector(trading, rebuilt, [cls() for cls in PROJECTIONS.values()],
                  batch_size=10_000).catch_up()
        differ = []
        for cls in PROJECTIONS.values():
            for table in cls.tables:
                select = (f"SELECT {', '.join(table.column_names)} FROM {{}} "
                          f"ORDER BY {', '.join(table.key)}")
                if (live.query(select.format(live.q(table.name)))
                        != rebuilt.query(select.format(rebuilt.q(table.name)))):
                    differ.append(table.name)
        return differ
    finally:
        live.close()
        rebuilt.close()
        trading.close()


def lease_table(url: str) -> str:
    """The lease tables' size as the run left them: rows (worker rows of workers alive
    now), dead tuples (PostgreSQL's statistics) and bytes on disk."""
    import psycopg

    from adapters.event_store.leases import LEASES, WORKERS, _schema_key
    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    schema = env["POSTGRES_SCHEMA"]
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        said = []
        for table in (WORKERS, LEASES):
            dead, size = conn.execute(
                "SELECT n_dead_tup, pg_total_relation_size(relid) "
                "FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
                (schema, table)).fetchone()
            (count,), = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchall()
            said.append(f"{table} {count} rows ({dead} dead tuples, {size // 1024} KiB)")
        (alive,), = conn.execute(
            f'SELECT count(*) FROM "{schema}".{WORKERS} w JOIN pg_locks l '
            "ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid::bigint = %s AND l.objid::bigint = w.number",
            (_schema_key(schema),)).fetchall()
    return f"lease tables: {'; '.join(said)}; workers alive {alive}"


def drop_schemas(url: str, schema: str) -> None:
    """The run's schemas, and the key files this process made for them (its seeding and
    checks ran here: ``TRADETAPE_KEY_DIR``, else ``var/keys``), left behind at every run."""
    import psycopg

    from adapters.security.key_files import key_file_base
    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        for name in (schema, schema + "_rebuilt"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            base = key_file_base(parse_database_url(with_schema(url, name)), os.environ)
            for path in base.parent.glob(f"{base.name}.*") if base is not None else ():
                path.unlink(missing_ok=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between kills")
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--lease-seconds", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=3000.0,
                        help="market minutes per real minute (3000: 50 candles a second)")
    parser.add_argument("--database", default=os.environ.get("TRADETAPE_TEST_POSTGRES_URL",
                                                             DEFAULT_URL))
    parser.add_argument("--kills", default=None,
                        help="comma-separated roles to kill in turn (engine, api, "
                        "projections) instead of a random process each time")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--schema-prefix", default="drill",
                        help="the run's schema is PREFIX_<random> (a shared server: each "
                        "session's schemas carry its own prefix)")
    parser.add_argument("--keep", action="store_true", help="keep the schema and the logs")
    return parser.parse_args(argv)


def start_all(processes: Processes) -> None:
    for name, line in (("projections", "Tradetape projections"),
                       ("engine-1", "Tradetape engine worker"),
                       ("engine-2", "Tradetape engine worker"), ("api", "Tradetape on")):
        processes.start(name)
        processes.wait_started(name, line)


def victims(args: argparse.Namespace, processes: Processes, leases: Leases):
    """The process to kill next, every ``--every`` seconds, until the drill's end."""
    chooser = random.Random(args.seed)
    sequence = [k.strip() for k in args.kills.split(",")] if args.kills else None
    ends = time.monotonic() + args.minutes * 60
    while sequence if sequence is not None else time.monotonic() < ends:
        waited = time.monotonic() + args.every
        while time.monotonic() < waited:
            processes.revive()
            time.sleep(min(1.0, max(0.0, waited - time.monotonic())))
        if sequence is None:
            yield chooser.choice(ROLES)
            continue
        role = sequence.pop(0)  # an engine: the one holding the most bots
        yield (max(["engine-1", "engine-2"], key=lambda n: sum(
            w == engine_of(processes, n) for w in leases.held().values()))
            if role == "engine" else role)


def drill(args, processes: Processes, leases: Leases, watch: Watch) -> Counter:
    """Kill and restart; for an engine, say how long its bots took to be leased again."""
    kills: Counter = Counter()
    for name in victims(args, processes, leases):
        alive, holders = leases.alive(), leases.held()
        at = time.monotonic()
        processes.kill(name)
        kills[name.split("-")[0]] += 1
        processes.start(name)  # as a supervisor would
        worker = leases.died(alive) if name.startswith("engine") else None
        held = {b for b, w in holders.items() if w == worker}
        outages = watch.killed(worker, at, held) if worker is not None else []
        if not outages:
            print(f"killed {name}", flush=True)
            continue
        deadline = at + args.lease_seconds * 3
        while any(o.leased is None for o in outages) and time.monotonic() < deadline:
            time.sleep(0.05)
        took = [o.leased for o in outages if o.leased is not None]
        never = len(outages) - len(took)
        print(f"killed {name} ({worker}, {len(outages)} bots): leased again in "
              f"{f'{min(took):.2f}-{max(took):.2f} s' if took else 'never'}"
              f"{f', {never} never' if never and took else ''}", flush=True)
    return kills


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    schema = f"{args.schema_prefix.lower()}_{uuid.uuid4().hex[:10]}"
    url = with_schema(args.database, schema)
    folder = Path(tempfile.mkdtemp(prefix="tradetape-drill-"))
    print(f"drill on {schema}: {args.bots} bots, a kill every {args.every:g} s for "
          f"{args.minutes:g} min, lease {args.lease_seconds:g} s; logs in {folder}",
          flush=True)
    processes = Processes(url, folder, args.lease_seconds, args.speed)
    leases = watch = None
    try:
        bots = set(patient(lambda: seed(url, args.bots), "seeding"))
        leases = patient(lambda: Leases(url), "the lease watch")
        start_all(processes)
        watch = patient(lambda: Watch(url, bots), "the watch")
        deadline = time.monotonic() + 60
        while not watch.all_held() and time.monotonic() < deadline:
            time.sleep(0.1)
        watch.start()
        kills = drill(args, processes, leases, watch)
        settle(watch, max(60.0, args.lease_seconds * 6))
        watch.stop()
        print(patient(lambda: lease_table(url), "the lease tables' size"), flush=True)
        for name in ("api", "engine-1", "engine-2"):
            processes.stop(name)
        head = patient(lambda: wait_projections(url), "the projections' catch-up")
        processes.stop("projections")
        twice, gaps = patient(lambda: check_log(url), "the log check")
        differ = patient(lambda: rebuild_differences(url, schema), "the rebuild")
    finally:
        for name in processes.running:
            processes.stop(name)
        if watch is not None:
            watch.stop()
        if leases is not None:
            leases.close()
        if not args.keep:
            patient(lambda: drop_schemas(args.database, schema), "dropping the schemas")
    with (folder / "outages.tsv").open("w") as out:  # for a closer look (--keep)
        for o in watch.outages:
            out.write(f"{o.since:.2f}\t{o.bot}\t{o.cause}\t{o.leased}\t{o.event}\n")
    with (folder / "leases.tsv").open("w") as out:
        for at, bot, worker, current in watch.moves:
            out.write(f"{at:.2f}\t{bot}\t{worker}\t{current}\n")
    resumed, resumed_met = resume_check(watch.outages, args.lease_seconds)
    checks = [
        (resumed, resumed_met),
        (f"client order ids used twice: {twice}", twice == 0),
        (f"aggregates with a gap in their versions: {gaps}", gaps == 0),
        (f"projections vs a full rebuild at {head} events: "
         f"{', '.join(differ) or 'equal'}", not differ),
        (f"processes with a traceback: {', '.join(processes.errors()) or 'none'}",
         not processes.errors()),
        (f"the drill's own watch: {watch.error or 'no error'}", watch.error is None),
    ]
    print(f"kills: {dict(kills)}; exits of their own (started again): "
          f"{dict(processes.exits) or 'none'}")
    for text, met in checks:
        print(f"{'MET   ' if met else 'MISSED'} {text}")
    ok = all(met for _, met in checks)
    if ok and not args.keep:  # a run that missed keeps its logs to be looked at
        shutil.rmtree(folder, ignore_errors=True)
    print("MET" if ok else f"MISSED (logs in {folder})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
