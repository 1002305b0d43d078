"""Seeding a big PostgreSQL log fast, for the benchmarks (bench_start, bench_live).

One user's history is made by the application itself on a memory store (an account, a
deposit, 10 bots, optionally paper trading on a saw-tooth market), then that user's stored
events are copied for every other user with every id renamed (ids derived from an owner,
like its bot roster's, derived again): the same events the application would write for
them, written with ``COPY`` instead of one save at a time. Several templates (bots whose
configurations differ) may be cloned in turn, so that not every user's bots act alike.
The read models are copied the same way, user by user (``clone_views``), or rebuilt once
(``tradetape projections rebuild``) when only some of them are asked for.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BOTS_PER_USER = 10
T0 = datetime(2025, 11, 1, tzinfo=UTC)
UUID_TEXT = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|[0-9a-f]{32}"
)
UUID_TEXT_STR = re.compile(UUID_TEXT.pattern.decode())  # the same, in the read models' text


def log(text: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


# --- the template: one user's history, made by the application ---------------------------


def bot_config(i: int, price: Decimal):
    from domain.dca import DcaConfig

    return DcaConfig.from_mapping(
        {
            "pair": "BTC/USDT",
            "base_order_quote": "100",
            "safety_order_quote": "50",
            "max_safety_orders": 4,
            "price_deviation_pct": str(Decimal("0.4") + i * Decimal("0.05")),
            "safety_volume_scale": "1.5",
            "safety_step_scale": "1.2",
            "take_profit_pct": str(Decimal("0.3") + i * Decimal("0.07")),
        }
    )


def market_price() -> Decimal:
    """Where the shipped series the server replays trades (its first close)."""
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series
    from application.server_settings import DEFAULT_FEED

    return Decimal(str(load_candles(shipped_series(DEFAULT_FEED)).close[0])).quantize(
        Decimal("0.01")
    )


def template(
    events_per_user: int,
    configs: Sequence | None = None,
    trade: bool = True,
    deposit: Decimal = Decimal("1000000"),
):
    """One user's stored events, made by the application on a memory store: ``configs``
    (default: 10 bots with different take-profits), each bot started; with ``trade``, paper
    trading until about ``events_per_user`` events, ending with deals and orders open."""
    owner, rows, _ = template_and_band(events_per_user, configs, trade, deposit)
    return owner, rows


def template_and_band(
    events_per_user: int,
    configs: Sequence | None = None,
    trade: bool = True,
    deposit: Decimal = Decimal("1000000"),
):
    """``template``'s owner and rows, and the band of prices (below, above) its bots rest
    between when it ends: a candle strictly inside it changes nothing (both None when a bot
    acts at every close). The template is the same at every call (its clock and ids are)."""
    from adapters.clock import SequentialIds, SettableClock
    from adapters.exchanges.paper import PaperExchange
    from application.bootstrap import open_trading
    from application.paper_market import market_band
    from application.paper_trading import PaperTrading
    from application.replay import read_log

    clock, ids = SettableClock(T0), SequentialIds("bench-start-template")
    trading = open_trading("memory", clock=clock, ids=ids)
    owner = str(ids.new_id())
    account = trading.open_account(owner_id=owner, exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", deposit, actor=owner)
    price = market_price()
    if configs is None:
        configs = [bot_config(i, price) for i in range(BOTS_PER_USER)]
    for i, config in enumerate(configs):
        bot_id = trading.create_bot(
            owner_id=owner, name=f"bot {i}", config=config, exchange_account_id=str(account)
        )
        trading.start_bot(bot_id, actor=owner)
    paper = PaperTrading(
        trading, ids, lambda pair, q, b: PaperExchange(pair, quote_balance=q, base_balance=b)
    )
    paper.resume()
    # A saw-tooth around the market: deals open, ladder down, close at their targets; the
    # last candles fall so that deals and resting orders are open at the end.
    saw = [Decimal(x) for x in ("1", "0.995", "0.99", "0.985", "0.98", "0.99", "1.005", "1.015")]
    n = 0
    while trade and ((trading.recorder.max_notification_id() or 0) < events_per_user or n % 8 != 5):
        o, c = price * saw[n % 8], price * saw[(n + 1) % 8]
        clock.current = T0 + timedelta(minutes=n + 1)
        paper.on_candle(
            "BTC/USDT",
            int(clock.current.timestamp() * 1000) - 60_000,
            o,
            max(o, c),
            min(o, c),
            c,
            clock.current,
        )
        n += 1
    rows = [
        (n.originator_id, n.originator_version, n.topic, bytes(n.state)) for n in read_log(trading)
    ]
    bands = [market_band(market) for market in paper._markets.values()]
    quiet = (None, None)
    if bands and not any(b.every_close or b.below is None or b.above is None for b in bands):
        quiet = (max(b.below for b in bands), min(b.above for b in bands))
    trading.close()
    return owner, rows, quiet


def quiet_candle(below: Decimal, above: Decimal, run: int = 10) -> int | None:
    """The first candle of the shipped series the server replays that ends ``run`` candles
    in a row strictly inside (below, above): a start whose market stands there trades
    nothing, so it measures the start and not a market the seed never saw."""
    from adapters.marketdata.csv_candles import load_candles
    from adapters.marketdata.shipped import shipped_series
    from application.server_settings import DEFAULT_FEED

    candles = load_candles(shipped_series(DEFAULT_FEED))
    inside = 0
    for i in range(len(candles.close)):
        _, high, low, _ = candles.exact(i)
        inside = inside + 1 if below < low and high < above else 0
        if inside >= run:
            return i - run + 1
    return None


class Cloner:
    """The template's events for another user: every id it names renamed, the ids derived
    from the owner derived again. Each state is cut once at its ids, so a copy is a join
    with the user's spellings of them (``spellings``: two per id, canonical and hex)."""

    def __init__(self, owner: str, rows: list[tuple]):
        from domain.risk import risk_id
        from domain.rosters import roster_id

        self.owner = uuid.UUID(owner)
        self.derived = {roster_id(owner): roster_id, risk_id(owner): risk_id}
        self.index: dict[uuid.UUID, int] = {}  # every id the template names: its place
        self.rows = []
        for oid, version, topic, state in rows:
            parts, slots, last = [], [], 0
            for match in UUID_TEXT.finditer(state):
                parts.append(state[last : match.start()])
                text = match.group().decode()
                slots.append(2 * self._place(uuid.UUID(text)) + (len(text) == 32))
                last = match.end()
            parts.append(state[last:])
            self.rows.append((2 * self._place(oid), version, topic, parts, slots))

    def _place(self, old: uuid.UUID) -> int:
        return self.index.setdefault(old, len(self.index))

    def mapping(self, k: int) -> dict[uuid.UUID, uuid.UUID]:
        owner = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-start:{k}:owner")
        names: dict[uuid.UUID, uuid.UUID] = {self.owner: owner}
        for old, derive in self.derived.items():
            names[old] = derive(str(owner))
        return names

    def names(self, k: int) -> dict[uuid.UUID, uuid.UUID]:
        """Every id the template names, to user ``k``'s."""
        names = self.mapping(k)
        return {old: names.get(old) or uuid.uuid5(uuid.NAMESPACE_URL, f"bench-start:{k}:{old}")
                for old in self.index}

    def spellings(self, k: int) -> list[str]:
        """User ``k``'s ids as text, in the template's order: canonical, then hex, of each."""
        return [text for new in self.names(k).values() for text in (str(new), new.hex)]

    def clone(self, k: int, spelled: list[str] | None = None):
        spelled = spelled or self.spellings(k)
        encoded = [text.encode() for text in spelled]
        for oid, version, topic, parts, slots in self.rows:
            pieces = [parts[0]]
            for slot, part in zip(slots, parts[1:], strict=True):
                pieces.append(encoded[slot])
                pieces.append(part)
            yield spelled[oid], version, topic, b"".join(pieces)


def copy_users(
    url: str,
    users: int,
    cloners: Sequence[Cloner],
    progress: Callable[[str], None] = log,
    first: int = 0,
    views: Any = None,
) -> int:
    """Users ``first`` to ``users - 1`` written with COPY (user k cloned from
    ``cloners[k % len]``), one transaction per user, sealed as the store seals its events;
    with ``views`` (a ``clone_views.ViewCopier``) their read models' rows too. Returns the
    events written."""
    from psycopg.rows import tuple_row

    from application.bootstrap import open_trading
    from application.settings import parse_database_url

    started = time.perf_counter()
    trading = open_trading(url)  # creates the tables (and the audit key) as serve would
    key = trading.recorder.sealing_key()
    schema = parse_database_url(url).env.get("POSTGRES_SCHEMA", "public")
    table = trading.recorder.events_table_name
    written = rows = 0
    with trading.recorder.datastore.get_connection() as conn:
        for k in range(first, users):
            cloner = cloners[k % len(cloners)]
            spelled = cloner.spellings(k)
            recorded = datetime.now(UTC)  # the user's transaction's time, for each event
            with conn.cursor(row_factory=tuple_row) as cursor:  # the store's are dicts
                after = 0
                if views is not None:
                    after = cursor.execute(
                        f'SELECT coalesce(max(notification_id), 0) FROM "{schema}"."{table}"'
                    ).fetchone()[0]
                copied = list(cloner.clone(k, spelled))
                _copy_events(cursor, schema, table, key, copied, recorded)
                if views is not None:
                    rows += views.copy_user(cursor, spelled, copied, after, recorded)
            conn.commit()
            written += len(copied)
            if (k - first) % max(1, (users - first) // 10) == 0:
                rate = written / (time.perf_counter() - started)
                progress(f"seeded {k + 1}/{users} users, {written} events"
                         f"{f', {rows} read-model rows' if views is not None else ''} "
                         f"({rate:,.0f} events/s)")
    trading.close()
    return written


def _copy_events(cursor: Any, schema: str, table: str, key: Any, copied: list[tuple],
                 recorded: datetime) -> None:
    from adapters.event_store.recorded_time import RECORDED_AT
    from adapters.event_store.sealing import SEALS_TABLE, canonical_id

    events_copy = (
        f'COPY "{schema}"."{table}" (originator_id, originator_version, topic, state, '
        f"{RECORDED_AT}) FROM STDIN"
    )
    with cursor.copy(events_copy) as copy:
        for row in copied:
            copy.write_row((*row, recorded))
    if key is not None:
        with cursor.copy(f'COPY "{schema}"."{SEALS_TABLE}" FROM STDIN') as copy:
            for oid, version, topic, state in copied:
                copy.write_row(
                    (oid, version, key.fingerprint,
                     key.seal(canonical_id(oid), version, topic, state))
                )


def rebuild_projections(url: str, projections: list[str] | None = None) -> float:
    """``tradetape projections rebuild`` on ``url``; returns its seconds."""
    began = time.perf_counter()
    subprocess.run(
        [
            str(ROOT / ".venv/bin/tradetape"),
            "projections",
            "rebuild",
            *(projections or []),
            "--database",
            url,
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def seed(url: str, bots: int, events: int, projections: list[str] | None = None) -> int:
    """``bots`` running paper bots (10 per user) in about ``events`` events: one template
    user trading, cloned for every user. Without ``projections``, the first user's read
    models are rebuilt and copied with every further user's events (``clone_views``);
    with them, only those projections are rebuilt once over the whole log at the end."""
    users = max(1, bots // BOTS_PER_USER)
    started = time.perf_counter()
    owner, rows = template(max(1, events // users))
    cloner = Cloner(owner, rows)
    log(
        f"template: {len(rows)} events for one user of {BOTS_PER_USER} bots "
        f"({time.perf_counter() - started:.1f} s)"
    )
    if projections:
        written = copy_users(url, users, [cloner])
        log(f"seeded {written} events in {time.perf_counter() - started:.1f} s; rebuilding "
            f"{', '.join(projections)}")
        log(f"projections rebuilt in {rebuild_projections(url, projections):.1f} s")
        analyze(url)
        return written
    from clone_views import finish, seed_with_views

    written = seed_with_views(url, users, cloner)
    head = finish(url)
    analyze(url)
    log(f"seeded {written} events and their read models in "
        f"{time.perf_counter() - started:.1f} s (head {head})")
    return written


@contextmanager
def _schema_connection(url: str) -> Iterator[tuple[Any, str]]:
    """An autocommit connection to ``url``'s database, and the schema the URL names."""
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    env = parse_database_url(url).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        yield conn, env.get("POSTGRES_SCHEMA", "public")


def analyze(url: str) -> None:
    """Statistics for the seeded tables, as a database in use has them: seeded in minutes,
    the autovacuum's last look may date from when they were small (it estimated 173,639
    rows of a 1.72M-event log), and a start then runs on plans for a small log."""
    with _schema_connection(url) as (conn, schema):
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                              (schema,)).fetchall()
        for (table,) in tables:
            conn.execute(f'ANALYZE "{schema}"."{table}"')


def ensure_schema(url: str, fresh: bool) -> bool:
    """True when the schema must be seeded (dropped first with ``fresh``)."""
    with _schema_connection(url) as (conn, schema):
        if fresh:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        found = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'trading_events'",
            (schema,),
        ).fetchone()
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return fresh or found is None
