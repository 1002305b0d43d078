"""The kill drill's watch (``scripts/drill_kill.py``): the lease table and the log, read
every 0.1 s while the bots trade, and every interruption of every bot timed from the kill
(or the lease let go) until a live worker leases it again and until it writes again."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass


class Leases:
    """The lease table as the drill watches it."""

    def __init__(self, url: str):
        import psycopg

        from application.settings import _connect_kwargs, parse_database_url

        database = parse_database_url(url)
        self.schema = database.env.get("POSTGRES_SCHEMA")
        self.conn = psycopg.connect(**_connect_kwargs(database.env), autocommit=True)

    def held(self) -> dict:
        """bot id -> worker, for leases current now."""
        rows = self.conn.execute(
            f'SELECT bot_id, worker FROM "{self.schema}".engine_leases '
            "WHERE expires_at > now()").fetchall()
        return dict(rows)

    def alive(self) -> set[str]:
        """The workers whose session lock is held: the database drops a killed one's."""
        from adapters.event_store.leases import _schema_key

        rows = self.conn.execute(
            f'SELECT w.worker FROM "{self.schema}".engine_workers w JOIN pg_locks l '
            "ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid::bigint = %s AND l.objid::bigint = w.number",
            (_schema_key(self.schema),)).fetchall()
        return {worker for (worker,) in rows}

    def died(self, before: set[str], timeout: float = 5) -> str | None:
        """Of the workers ``before``, the one that is no longer alive (once the database
        saw its connection go): the worker of a process killed even before it printed its
        name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gone = before - self.alive()
            if gone:
                return sorted(gone)[0]
            time.sleep(0.02)
        return None

    def close(self) -> None:
        self.conn.close()


@dataclass
class Outage:
    """A stretch of time a bot was not traded: from a kill of its worker (or its lease let go
    or expired) until a live worker leased it again, and until it wrote its next event."""

    bot: object
    cause: str
    since: float  # time.monotonic() at the kill (or when the drill saw the lease go)
    head: int  # the log's head then: a later event of the bot is its new owner's
    leased: float | None = None  # seconds until a live worker held its lease
    event: float | None = None  # seconds until its next event


class Watch:
    """Every bot, every 0.1 s while the bots trade: is it leased by a live worker (a lease
    current, its worker not killed), and what has it written since (the log, read on). A kill
    opens an outage for each bot the killed worker held, from the moment of the kill; a lease
    let go or expired opens one from when it is seen. Ends when the bot is leased again
    (``leased``) and when it writes again (``event``)."""

    def __init__(self, url: str, bots: set):
        from application.bootstrap import open_trading

        self.bots, self.leases = bots, Leases(url)
        self.trading = open_trading(url)
        self.position = self._head()
        self.owner: dict = {bot: bot for bot in bots}  # aggregate id -> bot id (None: no bot)
        self.dead: set[str] = set()
        self.open: dict = {}  # bot -> its outage not yet leased again
        self.outages: list[Outage] = []
        self.last: dict = {}  # bot -> (worker, current) last seen
        self.moves: list[tuple] = []  # (time, bot, worker, current) at each change
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-watch", daemon=True)
        self.error: str | None = None

    def _head(self) -> int:
        return self.trading.recorder.max_notification_id() or 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.leases.close()
        self.trading.close()

    def killed(self, worker: str, at: float, bots: set) -> list[Outage]:
        """``worker``, holding ``bots`` just before, was killed at ``at`` (called once it died:
        the log's head is then all it wrote)."""
        with self._lock:
            self.dead.add(worker)
            head = self._head()
            made = []
            for bot in sorted(bots & self.bots):
                outage = self.open.get(bot)
                if outage is None:
                    outage = self.open[bot] = Outage(bot, f"kill of {worker}", at, head)
                    self.outages.append(outage)
                made.append(outage)
            return made

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                with self._lock:
                    self._look()
            except Exception as error:  # the drill's own fault: reported, not fatal
                self.error = f"{type(error).__name__}: {error}"

    def _look(self) -> None:
        now = time.monotonic()
        rows = self.leases.conn.execute(
            f'SELECT bot_id, worker, expires_at > now() FROM "{self.leases.schema}".'
            "engine_leases").fetchall()
        live = {bot for bot, worker, current in rows
                if current and worker and worker not in self.dead}
        alive = frozenset(self.leases.alive())
        if self.last.get("alive") != alive:
            self.last["alive"] = alive
            self.moves.append((now, "alive", ",".join(sorted(alive)), len(alive)))
        for bot, worker, current in rows:
            if self.last.get(bot) != (worker, current):
                self.last[bot] = (worker, current)
                self.moves.append((now, bot, worker, current))
        for bot, worker, _ in rows:
            if bot not in self.bots:
                continue
            outage = self.open.get(bot)
            if bot in live and outage is not None:
                outage.leased = now - outage.since
                del self.open[bot]
            elif bot not in live and outage is None:
                cause = "lease let go" if not worker else (
                    f"kill of {worker}" if worker in self.dead else "lease expired")
                self.open[bot] = Outage(bot, cause, now, self._head())
                self.outages.append(self.open[bot])
        self._read_log(now)

    def _read_log(self, now: float) -> None:
        from application.replay import read_log

        waiting = {}
        for outage in self.outages:
            if outage.event is None:
                waiting.setdefault(outage.bot, []).append(outage)
        for note in read_log(self.trading, first=self.position + 1):
            self.position = note.id
            bot = self._bot_of(note)
            for outage in waiting.get(bot, ()):
                if outage.event is None and note.id > outage.head:
                    outage.event = now - outage.since

    def _bot_of(self, note):
        if note.originator_id not in self.owner:  # its first event says (a deal, an order)
            event = self.trading.mapper.to_domain_event(note)
            self.owner[note.originator_id] = getattr(event, "bot_id", None)
        return self.owner[note.originator_id]

    def all_held(self) -> bool:
        held = self.leases.held()
        return all(held.get(bot) not in (None, "", *self.dead) for bot in self.bots)

    def unfinished(self) -> list[Outage]:
        with self._lock:
            return [o for o in self.outages if o.leased is None or o.event is None]


def settle(watch: Watch, seconds: float) -> None:
    """After the last kill: until every bot interrupted was leased again and wrote again."""
    deadline = time.monotonic() + seconds
    while watch.unfinished() and time.monotonic() < deadline:
        time.sleep(0.2)


def resume_check(outages: list[Outage], lease: float) -> tuple[str, bool]:
    """Every outage of every bot: leased again by a live worker within the lease time, and
    a next event written (the bot trades again, not only leased)."""
    leased = sorted(o.leased for o in outages if o.leased is not None)
    events = sorted(o.event for o in outages if o.event is not None)
    causes = Counter(o.cause.split(" w-")[0] for o in outages)
    late = sum(t > lease for t in leased) + len(outages) - len(leased)
    silent = len(outages) - len(events)

    def spread(values):
        if not values:
            return "-"
        return f"median {values[len(values) // 2]:.2f} s, max {values[-1]:.2f} s"

    text = (f"bots resumed: {len(outages)} interruptions of {len({o.bot for o in outages})} "
            f"bots ({', '.join(f'{n} by {c}' for c, n in sorted(causes.items())) or 'none'}); "
            f"leased again {spread(leased)}, {late} later than the lease ({lease:g} s) or "
            f"never; next event {spread(events)}, {silent} wrote nothing after")
    return text, late == 0 and silent == 0
