"""What ``tradetape serve`` reads from ``TRADETAPE_*`` environment variables (flags win).

- ``TRADETAPE_DATABASE_URL``: the store (default ``sqlite:///var/tradetape.sqlite``)
- ``TRADETAPE_HOST`` / ``TRADETAPE_PORT``: where to listen (127.0.0.1, 8000)
- ``TRADETAPE_SPEED``: market minutes per real minute for the paper feed (default 60:
  one minute of market per second)
- ``TRADETAPE_FEED``: the shipped candle series the paper market replays, or
  ``ccxt:EXCHANGE`` (``ccxt:binance``) for the exchange's live closed 1-minute candles,
  polled every ``TRADETAPE_FEED_POLL_SECONDS`` (default 2); from its sandbox (testnet, at
  ``TRADETAPE_SANDBOX_HOST`` when set) with ``TRADETAPE_FEED_SANDBOX=1`` or
  ``ccxt:EXCHANGE:sandbox``. ``--demo`` always replays.
- ``TRADETAPE_GRAPHQL_CACHE``: ``off`` answers every GraphQL query afresh (default ``on``:
  read-only queries are answered from a cache keyed by the read version, see
  ``api/graphql/response_cache.py``)
- ``TRADETAPE_MAX_BOTS_PER_USER``: how many bots that are not stopped one user may have
  (default 50)
- ``TRADETAPE_SECRET_KEY``, ``TRADETAPE_MASTER_KEY``, ``TRADETAPE_KEY_DIR``,
  ``TRADETAPE_SMTP_URL``, ``TRADETAPE_STARTING_BALANCE``, ``TRADETAPE_PUBLIC_URL``: see
  ``application.identity_settings``, ``adapters/security/key_files.py`` and the README
- ``TRADETAPE_TRUSTED_PROXIES``: see ``application.trusted_proxies``
- ``TRADETAPE_STRIPE_API_KEY``, ``TRADETAPE_STRIPE_API_BASE``,
  ``TRADETAPE_STRIPE_WEBHOOK_SECRET``, ``TRADETAPE_STRIPE_PRICE_PRO``, ``TRADETAPE_BILLING``,
  ``TRADETAPE_GRACE_DAYS``: see ``application.billing_settings``
- ``TRADETAPE_ALLOW_LIVE``: ``1`` lets bots trade on live (non-sandbox) exchange accounts
  (default: sandbox accounts only, ``LIVE_TRADING_DISABLED``)
- ``TRADETAPE_WALLET_SECONDS``: how often the wallet monitor records every exchange
  account's balances and judges funding plans (default 300)
- ``TRADETAPE_AUDIT_CHECKPOINT_FILE``: append an audit checkpoint (one JSON line) to this
  file at start and every ``TRADETAPE_AUDIT_CHECKPOINT_SECONDS`` (default 3600), signed with
  the Ed25519 key file ``TRADETAPE_AUDIT_CHECKPOINT_SIGNING_KEY`` when set
- ``TRADETAPE_FEED_EPOCH``: when the shipped replay's first candle opens (ISO 8601 with a
  UTC offset; default 2026-01-01T00:00:00+00:00): where the replayed market stands follows
  from the clock and this moment, so processes given the same epoch show the same market,
  and a benchmark anchored at its launch replays the same candles every run
- ``TRADETAPE_STEP_LOG``: append each live-loop step's figures to this file, one JSON
  line a step (``application.live_loop.StepFigures``; what ``scripts/bench_live.py`` reads)
- ``TRADETAPE_APPENDS_AHEAD``: on PostgreSQL, an engine sends a candle's changes to the log
  each time its steps have staged this many aggregates, while it decides the rest
  (``application.appends_ahead``; default 2000); 0: one append at the candle's end
- ``TRADETAPE_PROMOTION_MIN_DAYS`` (7), ``TRADETAPE_PROMOTION_MIN_DEALS`` (20),
  ``TRADETAPE_PROMOTION_MIN_WIN_RATE_PCT`` (55), ``TRADETAPE_PROMOTION_MIN_PROFIT_PCT`` (3):
  the paper → live promotion gate (``domain.promotion``)
- ``TRADETAPE_NICE``: the niceness the process sets itself to once, at start (``--nice``;
  0..19, lower priority as it grows; negative only where the process may raise its
  priority). Unset: left as inherited. Running the engine and projections roles at 10 gives
  the api's event loop precedence for the cores (README, "Process priority per role")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from application.appends_ahead import AHEAD_AGGREGATES
from application.bot_roster import MAX_BOTS_PER_USER
from domain.errors import DomainError
from domain.numbers import Bounds, parse_number, parse_whole
from domain.promotion import PromotionRules

# A fixed epoch for the shipped replay: where the market stands follows from the clock
# alone, so a restarted server continues the same market.
REPLAY_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

DEFAULT_FEED = "binance_BTC_USDT-1m-2025-11.csv"
DEFAULT_FEED_PAIR = "BTC/USDT"
LIVE_FEED_PREFIX = "ccxt:"
DEFAULT_FEED_POLL_SECONDS = 2.0
MOST_FAVOURED_NICE, LEAST_FAVOURED_NICE = -20, 19  # POSIX niceness, as os.setpriority takes


@dataclass(frozen=True)
class LiveFeed:
    """``TRADETAPE_FEED=ccxt:EXCHANGE[:sandbox]``: live candles from an exchange."""

    exchange: str
    sandbox: bool
    sandbox_host: str | None  # TRADETAPE_SANDBOX_HOST, checked where clients are built
    poll_seconds: float

    def describe(self) -> str:
        where = " sandbox" if self.sandbox else ""
        return (f"live market from {self.exchange}{where}, closed 1m candles polled every "
                f"{self.poll_seconds:g} s")


@dataclass(frozen=True)
class ServerSettings:
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    speed: float = 60.0
    feed: str = DEFAULT_FEED
    feed_pair: str = DEFAULT_FEED_PAIR
    demo: bool = False
    graphql_cache: bool = True
    max_bots_per_user: int = MAX_BOTS_PER_USER
    checkpoint_file: str | None = None
    checkpoint_seconds: float = 3600.0
    checkpoint_signing_key: str | None = None
    live_feed: LiveFeed | None = None  # None: the shipped replay
    reconcile_seconds: float = 60.0
    wallet_seconds: float = 300.0
    allow_live: bool = False
    promotion: PromotionRules = field(default_factory=PromotionRules)
    candle_dir: str | None = None  # CSV series a user may chart or backtest by name
    step_log: str | None = None  # TRADETAPE_STEP_LOG: the live loop's steps, JSON lines
    feed_epoch: datetime = REPLAY_EPOCH  # TRADETAPE_FEED_EPOCH: the replay's first candle
    nice: int | None = None  # TRADETAPE_NICE / --nice: None leaves the inherited niceness
    appends_ahead: int = AHEAD_AGGREGATES  # TRADETAPE_APPENDS_AHEAD (0: off)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if environ is None else environ
        settings = cls(database_url=env.get("TRADETAPE_DATABASE_URL") or None)
        if env.get("TRADETAPE_HOST"):
            settings = replace(settings, host=env["TRADETAPE_HOST"])
        if env.get("TRADETAPE_PORT"):
            settings = replace(settings, port=_number(env["TRADETAPE_PORT"], "TRADETAPE_PORT",
                                                      int))
        if env.get("TRADETAPE_SPEED"):
            settings = replace(settings, speed=_number(env["TRADETAPE_SPEED"],
                                                       "TRADETAPE_SPEED", float))
        if env.get("TRADETAPE_FEED"):
            live = _live_feed(env["TRADETAPE_FEED"], env)
            # A live feed leaves the shipped replay as it is: --demo still replays it.
            settings = (replace(settings, live_feed=live) if live is not None
                        else replace(settings, feed=env["TRADETAPE_FEED"]))
        if env.get("TRADETAPE_STEP_LOG"):
            settings = replace(settings, step_log=env["TRADETAPE_STEP_LOG"])
        if env.get("TRADETAPE_FEED_EPOCH"):
            settings = replace(settings, feed_epoch=_moment(env["TRADETAPE_FEED_EPOCH"],
                                                            "TRADETAPE_FEED_EPOCH"))
        if env.get("TRADETAPE_NICE"):
            settings = replace(settings, nice=_number(env["TRADETAPE_NICE"].strip(),
                                                      "TRADETAPE_NICE", int))
        if env.get("TRADETAPE_APPENDS_AHEAD"):
            settings = replace(settings, appends_ahead=_number(
                env["TRADETAPE_APPENDS_AHEAD"].strip(), "TRADETAPE_APPENDS_AHEAD", int))
        if env.get("TRADETAPE_CANDLE_DIR"):
            settings = replace(settings, candle_dir=env["TRADETAPE_CANDLE_DIR"])
        if env.get("TRADETAPE_MAX_BOTS_PER_USER"):
            settings = replace(settings, max_bots_per_user=_number(
                env["TRADETAPE_MAX_BOTS_PER_USER"], "TRADETAPE_MAX_BOTS_PER_USER", int))
        cache = env.get("TRADETAPE_GRAPHQL_CACHE", "on").strip().lower()
        if cache not in ("on", "off"):
            raise DomainError(f"TRADETAPE_GRAPHQL_CACHE={cache!r}: use on or off",
                              code="INVALID_SETTING", field="TRADETAPE_GRAPHQL_CACHE")
        settings = replace(settings, graphql_cache=cache == "on",
                           allow_live=_flag(env, ALLOW_LIVE_ENV))
        settings = replace(settings, promotion=promotion_rules(env))
        return _wallet(_reconcile(_checkpoints(settings, env), env), env).checked()

    def checked(self) -> ServerSettings:
        if not 0 < self.port < 65536:
            raise DomainError(f"port {self.port} is not between 1 and 65535",
                              code="INVALID_SETTING", field="port")
        if not 0 < self.speed <= 100_000:
            raise DomainError("speed must be > 0 and at most 100000", code="INVALID_SETTING",
                              field="speed")
        if not 1 <= self.max_bots_per_user <= 100_000:
            raise DomainError("the bots per user must be between 1 and 100000",
                              code="INVALID_SETTING", field="max_bots_per_user")
        if not 0 <= self.appends_ahead <= 10_000_000:
            raise DomainError("TRADETAPE_APPENDS_AHEAD must be between 0 (off) and 10000000 "
                              "aggregates", code="INVALID_SETTING", field="appends_ahead")
        if self.nice is not None and not MOST_FAVOURED_NICE <= self.nice <= LEAST_FAVOURED_NICE:
            raise DomainError(f"niceness {self.nice} is not between 0 and 19 (or down to -20 "
                              "where the process may raise its priority)",
                              code="INVALID_SETTING", field="nice")
        return self


def _live_feed(feed: str, env: Mapping[str, str]) -> LiveFeed | None:
    if not feed.startswith(LIVE_FEED_PREFIX):
        return None
    exchange, _, mode = feed[len(LIVE_FEED_PREFIX):].strip().lower().partition(":")
    if not exchange or mode not in ("", "sandbox"):
        raise DomainError(f"TRADETAPE_FEED={feed!r}: use ccxt:EXCHANGE (e.g. ccxt:binance) or "
                          "ccxt:EXCHANGE:sandbox", code="INVALID_SETTING",
                          field="TRADETAPE_FEED")
    sandbox_flag = env.get("TRADETAPE_FEED_SANDBOX", "").strip().lower()
    if sandbox_flag not in ("", "0", "1", "true", "false", "yes", "no"):
        raise DomainError(f"TRADETAPE_FEED_SANDBOX={sandbox_flag!r}: use 1 or 0",
                          code="INVALID_SETTING", field="TRADETAPE_FEED_SANDBOX")
    poll = DEFAULT_FEED_POLL_SECONDS
    if env.get("TRADETAPE_FEED_POLL_SECONDS"):
        poll = _number(env["TRADETAPE_FEED_POLL_SECONDS"], "TRADETAPE_FEED_POLL_SECONDS", float)
        if not 0.01 <= poll <= 3600:
            raise DomainError("TRADETAPE_FEED_POLL_SECONDS must be between 0.01 and 3600",
                              code="INVALID_SETTING", field="TRADETAPE_FEED_POLL_SECONDS")
    return LiveFeed(exchange, sandbox=mode == "sandbox" or sandbox_flag in ("1", "true", "yes"),
                    sandbox_host=env.get("TRADETAPE_SANDBOX_HOST") or None, poll_seconds=poll)


def _reconcile(settings: ServerSettings, env: Mapping[str, str]) -> ServerSettings:
    """``TRADETAPE_RECONCILE_SECONDS``: how often live accounts are reconciled (default
    60; between 1 and 86400)."""
    return _period(settings, env, "TRADETAPE_RECONCILE_SECONDS", "reconcile_seconds")


def _wallet(settings: ServerSettings, env: Mapping[str, str]) -> ServerSettings:
    """``TRADETAPE_WALLET_SECONDS``: how often the wallet monitor records every exchange
    account's balances (default 300; between 1 and 86400)."""
    return _period(settings, env, "TRADETAPE_WALLET_SECONDS", "wallet_seconds")


def _period(settings: ServerSettings, env: Mapping[str, str], name: str,
            attribute: str) -> ServerSettings:
    seconds = env.get(name)
    if not seconds:
        return settings
    value = _number(seconds, name, float)
    if not 1 <= value <= 86400:
        raise DomainError(f"{name} must be between 1 and 86400", code="INVALID_SETTING",
                          field=name)
    return replace(settings, **{attribute: value})


def _checkpoints(settings: ServerSettings, env: Mapping[str, str]) -> ServerSettings:
    seconds = env.get("TRADETAPE_AUDIT_CHECKPOINT_SECONDS")
    settings = replace(settings,
                       checkpoint_file=env.get("TRADETAPE_AUDIT_CHECKPOINT_FILE") or None,
                       checkpoint_signing_key=env.get("TRADETAPE_AUDIT_CHECKPOINT_SIGNING_KEY")
                       or None)
    if seconds:
        value = _number(seconds, "TRADETAPE_AUDIT_CHECKPOINT_SECONDS", float)
        if not 1 <= value <= 31 * 86400:
            raise DomainError("TRADETAPE_AUDIT_CHECKPOINT_SECONDS must be between 1 and "
                              "2678400 (31 days)", code="INVALID_SETTING",
                              field="TRADETAPE_AUDIT_CHECKPOINT_SECONDS")
        settings = replace(settings, checkpoint_seconds=value)
    return settings


_PROMOTION = {"TRADETAPE_PROMOTION_MIN_DAYS": ("min_days", Bounds(Decimal(0), Decimal(3650))),
              "TRADETAPE_PROMOTION_MIN_DEALS": ("min_closed_deals",
                                                Bounds(Decimal(0), Decimal(1_000_000))),
              "TRADETAPE_PROMOTION_MIN_WIN_RATE_PCT": ("min_win_rate_pct",
                                                       Bounds(Decimal(0), Decimal(100))),
              "TRADETAPE_PROMOTION_MIN_PROFIT_PCT": ("min_profit_pct",
                                                     Bounds(Decimal(-100), Decimal(10_000)))}


def promotion_rules(env: Mapping[str, str]) -> PromotionRules:
    """The promotion gate's thresholds; a bad value is ``INVALID_SETTING`` naming it."""
    rules = PromotionRules()
    for name, (attribute, bounds) in _PROMOTION.items():
        if not env.get(name):
            continue
        try:
            parse = parse_whole if attribute == "min_closed_deals" else parse_number
            rules = replace(rules, **{attribute: parse(env[name].strip(), name, bounds)})
        except DomainError as error:
            raise DomainError(f"{name}={env[name]!r}: {error.message}",
                              code="INVALID_SETTING", field=name) from None
    return rules


ALLOW_LIVE_ENV = "TRADETAPE_ALLOW_LIVE"


def _flag(env: Mapping[str, str], name: str) -> bool:
    """``1``/``true``/``yes`` on, unset/``0``/``false``/``no`` off; anything else refused
    (a typo must not decide whether real money trades)."""
    text = (env.get(name) or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise DomainError(f"{name}={text!r}: use 1 or 0", code="INVALID_SETTING", field=name)


def _moment(text: str, name: str) -> datetime:
    """An ISO 8601 time with its UTC offset (a time without one would mean a different
    market on every machine's time zone)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise DomainError(f"{name}={text!r}: use an ISO 8601 time with its UTC offset, "
                          "e.g. 2026-01-01T00:00:00Z", code="INVALID_SETTING", field=name)
    return moment.astimezone(UTC)


def _number(text: str, name: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise DomainError(f"{name}={text!r} is not a number", code="INVALID_SETTING",
                          field=name) from None
