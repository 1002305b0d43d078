"""The DataLoaders of a request, each made by one of the factories of ``factory.py`` (so
every batch runs on a worker thread): :class:`Loaders` holds a fresh set per request.

Keys: ids as the views hold them; pages ``(owner, first, after, last, before)``
(bots), ``(owner, bot id, status, first, after, last, before)`` (deals), ``(owner, actor,
aggregate id, first, after)`` (audit); portfolios ``(owner, as of)``; histories
``(aggregate id, as of)``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api.graphql.loaders.factory import by_ids, in_thread, per_key
from domain.errors import NotFoundError
from projections import backtests, portfolio, queries
from projections.audit_queries import audit_page
from projections.history import aggregate_history, deal_fills, deal_sells


class Loaders:
    def __init__(self, runtime, read):
        trading, identity = runtime.trading, runtime.identity
        self.accounts = by_ids(read, queries.accounts_by_id)
        self.bots = by_ids(read, queries.bots_by_id)
        self.deals = by_ids(read, queries.deals_by_id)
        self.bot_pnl = by_ids(read, portfolio.pnl_by_bot)
        self.deal_pnl = by_ids(read, portfolio.pnl_by_deal)
        self.orders = by_ids(read, queries.orders_by_deal, list)
        self.pnl_series = by_ids(read, portfolio.pnl_series, list)
        self.backtest_rows = by_ids(read, backtests.runs_by_id)
        self.active_bots = per_key(read, queries.active_bots, cache=False)
        self.leaderboards = per_key(read, portfolio.leaderboard)
        self.bot_pages = per_key(read, lambda store, k: queries.bots_page(store, *k))
        self.deal_pages = per_key(read, lambda store, k: queries.deals_page(
            store, owner=k[0], bot_id=k[1], status=k[2], first=k[3], after=k[4],
            last=k[5], before=k[6]))
        self.audit_pages = per_key(read, lambda store, k: audit_page(
            store, owner=k[0], actor=k[1], aggregate_id=k[2], first=k[3], after=k[4]))
        self.portfolios = in_thread(lambda keys: [
            read.run(portfolio.portfolio, owner) if as_of is None
            else portfolio.portfolio_as_of(trading, owner, as_of) for owner, as_of in keys])
        self.fills = in_thread(lambda ids: _each(deal_fills(trading, ids), ids, list))
        self.sells = in_thread(lambda ids: _each(deal_sells(trading, ids), ids, list))
        self.histories = in_thread(lambda keys: [aggregate_history(trading, i, as_of)
                                                 for i, as_of in keys])
        self.bot_configs = in_thread(lambda ids: [
            _found(lambda i: trading.get_bot(UUID(i)).config, i) for i in ids])
        self.users = in_thread(lambda ids: [
            _found(lambda i: identity.get_user(UUID(i)), i) for i in ids])
        self.stored_backtests = in_thread(lambda ids: [
            _found(lambda i: trading.load(UUID(i), _backtest_run()), i) for i in ids])
        self.backtest_results = in_thread(lambda ids: [
            runtime.backtests.result(UUID(i)) for i in ids])


def _each(found: dict, keys: list, empty) -> list:
    return [found.get(k, empty()) for k in keys]


def _found(get, key: str) -> Any:
    """``get(key)``, or None for an id that is no id or names nothing."""
    try:
        return get(key)
    except (ValueError, NotFoundError):
        return None


def _backtest_run():
    from domain.backtests import BacktestRun

    return BacktestRun
