"""Read versions by owner: what a cached answer of one user depends on, so that other
users' trading does not make it a miss.

A user's cached answers (``bots``, ``deals``, ``portfolio``...) read rows that only that
user's events change: their bots, deals, orders, balances and P/L tallies. Open deals are
marked at the market's price when the answer is made (the market tape), not at whoever
filled last, so the version also holds the tape's. The version of an owner is then

- the log position of the last event that belongs to them (or to no one known: a system
  event counts for everyone), learnt by reading the log from where the last call stopped
  (the log as it stood at the first call counts for everyone: it is not read again);
- whether every projection has applied that event yet; until they all have, for each
  projection the position of the last of their events it has applied (what the views show
  them changes only then: other users' events applied meanwhile leave it as it is), or
  the projection's position itself where their events that far back are forgotten;
- each projection's generation (a rebuild changes every answer).

The market's marks are not part of it: the answer cache keeps, with each answer, the
version of each pair whose mark the answer read (``application.market_tape.MARKS_READ``),
so a new candle only touches the answers that marked an open deal of its pair (marked
again at the new price: ``api/graphql/remarking.py``).

Reading the database (:meth:`OwnerVersions.snapshot`) and working out one owner's version
from what was read (:meth:`OwnerVersions.version_of`) are apart: one snapshot, read on a
worker thread, serves every request that arrived before it began (the answer cache
coalesces them), and each request's own version costs two dictionary lookups. On
PostgreSQL its statement is awaited on the event loop instead
(:meth:`OwnerVersions.snapshot_on_loop`): at an even rate nearly every request waits for a
snapshot of its own, and the hand-over to the thread and back cost the api more processor
time than the statement itself. While the log's channel is silent the log's head is kept
and the positions alone are read (``_read_on_loop``).

Which owner an event belongs to: its ``owner_id`` when it has one (a bot's, deal's or
order's first event), the aggregate's owner learnt from such an event, the user's own id
for ``User`` events, else the one named by the aggregate's first event (read once from the
event store); an event whose owner cannot be found counts for everyone.
An administrator's view spans every owner: it keeps the whole-log version.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from anyio import to_thread

from api.graphql.owner_log import OwnerLog, OwnerRow
from projections.facts import FactDecoder
from projections.store import TRACKING

# Events read a statement. WHY large: right after an engine's heavy candle (tens of
# thousands of events in one append) every request waits for their owners to be learnt,
# while the engine's next steps and the projections' catch-up keep both cores and the
# database busy, so each round trip also waits its turn for a core: a wave in a handful of
# statements instead of a hundred. (Most of that wait was the first events' statement,
# ``OwnerLog.firsts``, since one key probe per aggregate.)
PAGE = 10_000
MAX_KNOWN = 200_000  # aggregates whose owner is remembered; forgotten all at once past it
EVERYONE = ""
RECENT = 16  # positions of each owner's latest events kept, for the projections behind
FIRSTS = 5000  # unknown aggregates whose first events are read in one statement
MAX_REUSE = 0.25  # seconds a snapshot is given again while no write was heard of
MAX_HEAD_REUSE = 1.0  # seconds the log's head is given again while no append was heard of


@dataclass(frozen=True)
class Snapshot:
    """The log's head and each projection's (name, position, generation) as read at once."""

    head: int
    tracking: tuple[tuple[str, int, int], ...]


class OwnerVersions:
    def __init__(self, trading: Any, read: Any):
        self.trading, self.read = trading, read
        self.decode = FactDecoder(trading.mapper)
        self._log: OwnerLog | None = None  # the new events' rows (made with the first read)
        self.position: int | None = None  # the log is read from here on
        self.touched: dict[str, int] = {}  # owner: last position of theirs
        self.owners: dict[str, str] = {}  # aggregate id: owner
        self.recent: dict[str, deque[int]] = {}  # owner: their latest positions, ascending
        self._head_sql: str | None = None  # the log's head read beside the views ("": not)
        self._on_loop_sql = ""  # the head and the positions (PostgreSQL: on the loop)
        self._tracking_on_loop = ""  # the positions alone (the head kept: ``_head``)
        # (watch, its log stamp before the read, when it began, the log's head read)
        self._head: tuple[Any, int, float, int] | None = None
        self._channels: tuple[str, ...] = ()  # where the log and the views NOTIFY
        # (watch, its stamp before the read, when it began, the snapshot): given again
        # while the stamp holds (``snapshot_on_loop``)
        self._kept: tuple[Any, int, float, Snapshot] | None = None
        self.reused = 0  # snapshots given again without a read
        self._lock = threading.Lock()

    def version(self, owner: str | None) -> tuple[Any, ...]:
        """``owner``'s read version; None: the whole log's (an administrator's)."""
        return self.version_of(self.snapshot(), owner)

    def snapshot(self) -> Snapshot:
        """Reads the log's head and the projections' positions, and learns the owners of
        the events appended since the last snapshot (blocking: on a worker thread)."""
        head, tracking = self.read.run_apart(self._head_and_tracking)
        self._learn_up_to(head)
        return Snapshot(head, tuple(map(tuple, tracking)))

    async def snapshot_on_loop(self) -> Snapshot | None:
        """``snapshot()``, its statement awaited on the event loop (``ReadSide.
        query_on_loop``: PostgreSQL, the views beside the log) instead of run on a worker
        thread; the owners of new events are still learnt on a worker thread, only when
        the head moved. None: read with ``snapshot`` instead (the first read, which also
        makes the statement, or another store).

        The last snapshot is given again without reading while nothing was written since
        its read began: the loop's LISTEN on the log's and the views' channels
        (``ReadSide.change_watch``) has taken in no NOTIFY since (what had reached its
        socket is taken in first), nor was this process said to write, and for at most
        ``MAX_REUSE`` seconds."""
        statement = self._on_loop_sql
        if not statement or self.position is None:
            return None
        watch, stamp, kept = self._stamp()
        if kept is not None:
            return kept
        now = time.monotonic()
        read = await self._read_on_loop(watch, now)
        if read is None:  # no tracking rows yet: ``snapshot`` reads the recorder's head
            return None
        head, tracking = read
        if head > self.position:
            await to_thread.run_sync(self._learn_up_to, head)
        found = Snapshot(head, tracking)
        self._kept = None if stamp is None else (watch, stamp, now, found)
        return found

    async def _read_on_loop(self, watch: Any, now: float
                            ) -> tuple[int, tuple[tuple[Any, ...], ...]] | None:
        """(the log's head, the projections' rows). The head last read is given again, the
        positions alone read, while the log's channel said nothing since that read began
        (``ChangeWatch.log_stamp``; at most ``MAX_HEAD_REUSE`` s) and no position is past
        it. WHY: while an append is under way (a heavy candle's tens of thousands of
        events inserted, then sealed, before its commit), ``MAX(notification_id)`` walks
        back over each of its entries in the index, not yet visible (7-16 ms for 50,000
        on a quiet server, 0.5 ms once committed), and every request waits for it; the
        views' batches of the step before, which NOTIFY meanwhile, then cost that walk
        too."""
        head_kept = self._head
        log_stamp = None if watch is None else watch.log_stamp()
        if (head_kept is not None and log_stamp is not None and head_kept[0] is watch
                and head_kept[1] == log_stamp and now - head_kept[2] < MAX_HEAD_REUSE):
            rows = await self.read.query_on_loop(self._tracking_on_loop)
            tracking = tuple(tuple(row) for row in rows)
            if rows and all(position <= head_kept[3] for _, position, _ in tracking):
                return head_kept[3], tracking
        rows = await self.read.query_on_loop(self._on_loop_sql)
        if not rows:
            return None
        head = rows[0][0] or 0
        self._head = None if log_stamp is None else (watch, log_stamp, now, head)
        return head, tuple(tuple(row[1:]) for row in rows)

    def kept_snapshot(self) -> Snapshot | None:
        """The last snapshot if it may be given again now without a read (see
        ``snapshot_on_loop``), else None; on the event loop, without waiting."""
        return self._stamp()[2] if self._on_loop_sql else None

    def stamp(self) -> tuple[Any, int] | None:
        """(the loop's watch, what it heard of writes so far), or None when not known (not
        listening, or not PostgreSQL): equal stamps, nothing written in between."""
        if not self._on_loop_sql or not self._channels:
            return None
        watch = self.read.change_watch(self._channels)
        count = None if watch is None else watch.stamp()
        return None if count is None else (watch, count)

    def _stamp(self) -> tuple[Any, int | None, Snapshot | None]:
        """(the loop's watch or None, its stamp now or None, the kept snapshot if it holds
        at that stamp)."""
        watch = self.read.change_watch(self._channels) if self._channels else None
        stamp = None if watch is None else watch.stamp()
        kept = self._kept
        if (stamp is not None and kept is not None and kept[0] is watch
                and kept[1] == stamp and time.monotonic() - kept[2] < MAX_REUSE):
            self.reused += 1
            return watch, stamp, kept[3]
        return watch, stamp, None

    def _learn_up_to(self, head: int) -> None:
        with self._lock:
            if self.position is None:  # the log as it stood: everyone's, until applied
                self.position = self.touched[EVERYONE] = head
                self._touch(EVERYONE, [head])
            if head > self.position:
                self._scan(head)

    def _head_and_tracking(self, store: Any) -> tuple[int, list[tuple[Any, ...]]]:
        """One statement where the views live beside the log (the log reader's test: same
        PostgreSQL schema or SQLite file), which also reads both at one moment; else the
        recorder's head, then the positions."""
        if self._log is None:
            self._log = OwnerLog(self.trading, store)
        if self._head_sql is None:
            from projections.reader import LogReader

            table = getattr(self.trading.recorder, "events_table_name", None)
            reader = LogReader(self.trading, store)
            column = "notification_id" if store.kind == "postgres" else "rowid"
            shared = bool(table) and reader.sql is not None and not reader.via_recorder
            self._head_sql = (f"SELECT MAX({column}) FROM {store.q(table)}" if shared else "")
        tracking = f"SELECT name, position, generation FROM {store.q(TRACKING)}"
        if self._head_sql:
            statement = f"SELECT ({self._head_sql}), t.* FROM ({tracking}) t ORDER BY t.name"
            if store.kind == "postgres":
                self._on_loop_sql = statement
                self._tracking_on_loop = f"{tracking} ORDER BY name"
                channel = getattr(self.trading.recorder, "channel_name", None)
                self._channels = (channel, store.channel) if channel else ()
            rows = store.query(statement)
            if rows:
                return rows[0][0] or 0, [tuple(row[1:]) for row in rows]
        head = self.trading.recorder.max_notification_id() or 0
        return head, store.query(f"{tracking} ORDER BY name")

    def version_of(self, snapshot: Snapshot, owner: str | None) -> tuple[Any, ...]:
        """``owner``'s read version as of ``snapshot``. A later snapshot may have learnt
        of newer events of theirs meanwhile: the version is then one no answer was kept
        with (a miss), never an older one."""
        tracking = snapshot.tracking
        if owner is None:
            return (snapshot.head, *tracking)
        touched = self.touched
        mine = max(touched.get(owner, 0), touched.get(EVERYONE, 0))
        applied = all(position >= mine for _, position, _ in tracking)
        generations = tuple((name, generation) for name, _, generation in tracking)
        if applied:
            return (mine, True, generations)
        return (mine, tuple(self._applied(owner, position) for _, position, _ in tracking),
                generations)

    def _applied(self, owner: str, position: int) -> int | tuple[str, int]:
        """The position of ``owner``'s (or everyone's) last event at or before a
        projection's ``position``; ("at", position) when that is no longer known."""
        theirs, everyones = (self._last_at(owner, position),
                             self._last_at(EVERYONE, position))
        if theirs is None or everyones is None:
            return ("at", position)
        return max(theirs, everyones)

    def _last_at(self, owner: str, position: int) -> int | None:
        recent = self.recent.get(owner)
        if recent is None:
            return 0 if owner != EVERYONE else None  # no event of theirs yet
        found = bisect_right(recent, position)  # ints only: the scan cannot cut in
        return recent[found - 1] if found else None  # None: older ones forgotten

    def _touch(self, owner: str, positions: list[int]) -> None:
        """``owner``'s events at ``positions`` (ascending, after every one known)."""
        self.touched[owner] = positions[-1]
        recent = self.recent.get(owner)
        if recent is None:  # an owner's first: before it, they had nothing (0)
            recent = self.recent[owner] = deque([0] if owner != EVERYONE else (),
                                                maxlen=RECENT)
        recent.extend(positions[-RECENT:])

    def _scan(self, head: int) -> None:
        """Learns the owners of the events up to ``head``, a page at a time: first whose
        their aggregates are, then each owner's positions, in one ``_touch`` an owner a
        page. WHY not a call per event: after a heavy candle every request waits for the
        tens of thousands of events it appended (issue 15)."""
        log = self._log
        assert log is not None  # made by the snapshot's first read
        while self.position < head:
            page = log.read(self.read, self.position, PAGE)
            if not page:
                break
            self._learn(page)
            mine: dict[str, list[int]] = {}  # owner: their positions in the page
            owner_of = self.owners.get
            for row in page:
                owner = owner_of(row[1], EVERYONE)
                try:
                    mine[owner].append(row[0])
                except KeyError:
                    mine[owner] = [row[0]]
            for owner, positions in mine.items():
                self._touch(owner, positions)
            self.position = page[-1][0]

    def _learn(self, page: list[OwnerRow]) -> None:
        """The owners of the aggregates of ``page``'s events: named by the event's state
        (only such a state is read: most events name none, an order's fills, a deal's
        moves), a ``User``'s own, else the one their first event names."""
        if len(self.owners) > MAX_KNOWN:
            self.owners.clear()
        owners, maybe = self.owners, {}
        for row in page:
            oid = row[1]
            if row[4] is not None:
                owner = self.decode.owner_of(row)
                if owner is not None:
                    owners[oid] = owner
                    continue
            if oid in owners:
                continue  # (a User's is its own: set below once)
            if row[3].partition(":")[2].startswith("User."):
                owners[oid] = oid
            else:
                maybe[oid] = None
        unknown = [oid for oid in maybe if oid not in owners]  # (named later in the page)
        for start in range(0, len(unknown), FIRSTS):
            some = unknown[start:start + FIRSTS]
            firsts = None if self._log is None else self._log.firsts(self.read, some)
            for oid in some:
                if firsts is None:
                    owner = self._first_owner(oid)
                else:
                    first = firsts.get(oid)
                    owner = None if first is None else self._owner_named(first)
                if owner is not None:
                    self.owners[oid] = owner

    def _first_owner(self, oid: str) -> str | None:
        """The owner named by the aggregate's first event (a bot's, deal's, order's,
        account's or roster's names it), or None."""
        first = self.trading.recorder.select_events(UUID(oid), limit=1)
        if not first:
            return None
        stored = first[0]
        return self._owner_named((0, oid, stored.originator_version, stored.topic,
                                  stored.state))

    def _owner_named(self, row: OwnerRow) -> str | None:
        return self.decode.owner_of(row)
