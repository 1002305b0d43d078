"""The composition root's exchanges through ccxt: live accounts' venues and their
reconciliation clients, market rules, the live candle feed and candle downloads."""

from __future__ import annotations


def open_market_rules(exchange_id: str, *, sandbox: bool, environ=None):
    """``rules(pair)``: the exchange's steps and minimums for a pair, read through ccxt
    with no keys (markets are public); PAIR_NOT_TRADED for a pair it does not list."""
    import os

    from adapters.exchanges.ccxt_client import sandbox_host_from
    from adapters.exchanges.ccxt_venue import CcxtExchange

    env = dict(os.environ if environ is None else environ)
    exchange = CcxtExchange.open(exchange_id, sandbox=sandbox,
                                 sandbox_host=sandbox_host_from(env) if sandbox else None)
    return exchange.market_rules


def open_live_venues(exchange_accounts, environ=None):
    """``venue(account, pair)``: a live account's venue on one pair, through ccxt (one
    client per account, shared by its pairs; ``TRADETAPE_SANDBOX_HOST`` for sandboxes);
    ``venue.reconciliation_exchange(account_id)``: the reconciliation's, a client of its own.
    The account's keys are unsealed here, in memory only."""
    import os

    from application.live_venue import LiveVenue

    env = dict(os.environ if environ is None else environ)
    exchanges: dict = {}

    def exchange_of(account):
        view = exchange_accounts.account(account.id)
        exchange = exchanges.get(account.id)  # (released meanwhile: made again)
        if exchange is None:
            exchange = exchanges[account.id] = _ccxt_exchange(
                view, env, credentials=exchange_accounts.credentials(account.id),
                resend_unknown=False)
        return exchange, view

    def venue(account, pair: str):
        exchange_accounts.check_can_trade(account.id)
        exchange, view = exchange_of(account)
        return LiveVenue(exchange, pair, account_id=str(account.id), sandbox=view.sandbox)

    def market_rules(account, pair: str):
        """The exchange's rules for ``pair``; None where this server may not trade the
        account (nothing is asked of an exchange it will not trade on) or the exchange
        cannot be reached now (the venue checks again before each order)."""
        from domain.errors import DomainError

        try:
            exchange_accounts.check_can_trade(account.id)
            return rules_exchange(account).market_rules(pair)
        except DomainError as error:
            if error.code == "PAIR_NOT_TRADED":
                raise
            return None

    public: dict = {}  # (exchange, sandbox) -> a client with no keys

    def rules_exchange(account):
        """The account's own client where this process trades it (its markets loaded),
        else one with no keys per exchange: the rules are public, and a process that only
        shows them (the api: forms, a bot's checks) keeps no account's keys for them (the
        api used to keep a client with its keys for every account ever shown, for good:
        only a reconciliation round, which the api never runs, let them go)."""
        exchange = exchanges.get(account.id)
        if exchange is not None:
            return exchange
        view = exchange_accounts.account(account.id)
        exchange = public.get((view.exchange, view.sandbox))
        if exchange is None:
            exchange = public[view.exchange, view.sandbox] = _ccxt_exchange(view, env)
        return exchange

    reconciling: dict = {}

    def reconciliation_exchange(account_id: str):
        """The account's exchange for the reconciliation, which asks it from a thread of its
        own: a ccxt client of its own (own HTTP session and rate limiter; the key's nonces
        and, where the exchange needs it, its turn shared with the venue's client through
        ``ccxt_client.KeyGate``), never the trading step's client on two threads."""
        from uuid import UUID

        key = UUID(account_id)
        exchange = reconciling.get(key)
        if exchange is None:
            exchange = reconciling[key] = _ccxt_exchange(
                exchange_accounts.account(key), env,
                credentials=exchange_accounts.credentials(key), resend_unknown=False)
        return exchange

    def release_unused(traded: set[str]) -> None:
        """Drop the clients kept for accounts this runner no longer trades live (their
        bots stopped, the account removed): their keys leave memory with them, and each
        key's gate once no client of it is left (``ccxt_client.KeyGate``). A venue still
        in use keeps its own client; asked again, an account gets a new one, on the same
        gate while any old one lives."""
        for cache in (exchanges, reconciling):
            for account_id in [a for a in cache if str(a) not in traded]:
                cache.pop(account_id, None)

    venue.market_rules = market_rules
    venue.reconciliation_exchange = reconciliation_exchange
    venue.release_unused = release_unused
    return venue


def _ccxt_exchange(view, env, credentials=None, **kwargs):
    """A ccxt client for an account's exchange (``view``: its exchange id and whether a
    sandbox, at ``TRADETAPE_SANDBOX_HOST`` when set); ``credentials`` None: no keys."""
    from adapters.exchanges.ccxt_client import sandbox_host_from
    from adapters.exchanges.ccxt_venue import CcxtExchange

    return CcxtExchange.open(view.exchange, sandbox=view.sandbox, credentials=credentials,
                             sandbox_host=sandbox_host_from(env) if view.sandbox else None,
                             **kwargs)


def open_live_feed(live, *, pairs):
    """The exchange's closed 1-minute candles of ``pairs()`` (``TRADETAPE_FEED=ccxt:...``,
    see ``application.server_settings.LiveFeed``), through a ccxt client of its own. No
    request is made here: a server starts while the exchange is away."""
    from adapters.exchanges.ccxt_client import open_client, sandbox_host_from
    from adapters.marketdata.ccxt_feed import CcxtFeed
    from adapters.marketdata.ccxt_history import CcxtCandleHistory

    host = (sandbox_host_from({"TRADETAPE_SANDBOX_HOST": live.sandbox_host or ""})
            if live.sandbox else None)
    client = open_client(live.exchange, sandbox=live.sandbox, sandbox_host=host)
    history = CcxtCandleHistory(client, sandbox=live.sandbox, sandbox_host=host)
    history.check_live_feed_support()
    return CcxtFeed(history, pairs, poll_seconds=live.poll_seconds, page=history.page_limit())


def open_candle_download(exchange_id: str, *, sandbox: bool, out: str, environ=None):
    """``(history, file)`` for ``tradetape candles fetch``: the exchange's candle history
    (transient failures retried with backoff) and the CSV it resumes and appends to."""
    import os

    from adapters.exchanges.ccxt_client import open_client, sandbox_host_from
    from adapters.marketdata.candle_csv_writer import CandleCsvWriter
    from adapters.marketdata.ccxt_history import CcxtCandleHistory

    host = sandbox_host_from(dict(os.environ if environ is None else environ)) if sandbox else None
    client = open_client(exchange_id, sandbox=sandbox, sandbox_host=host)
    history = CcxtCandleHistory(client, sandbox=sandbox, sandbox_host=host, attempts=5)
    return history, lambda: CandleCsvWriter(out)
