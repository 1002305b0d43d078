"""One DataLoader per file; :class:`Loaders` holds a fresh set for each request."""

from __future__ import annotations

from api.graphql.loaders.accounts import accounts_by_id
from api.graphql.loaders.active_bots import active_bots_by_owner
from api.graphql.loaders.audit_pages import audit_pages
from api.graphql.loaders.backtests import backtest_results, backtest_rows, stored_backtests
from api.graphql.loaders.bot_configs import configs_by_bot
from api.graphql.loaders.bot_pages import bot_pages
from api.graphql.loaders.bot_pnl import pnl_by_bot
from api.graphql.loaders.bots import bots_by_id
from api.graphql.loaders.deal_pages import deal_pages
from api.graphql.loaders.deal_pnl import pnl_by_deal
from api.graphql.loaders.deals import deals_by_id
from api.graphql.loaders.fills import fills_by_deal
from api.graphql.loaders.histories import histories
from api.graphql.loaders.leaderboard import leaderboards
from api.graphql.loaders.orders import orders_by_deal
from api.graphql.loaders.pnl_series import pnl_series_by_bot
from api.graphql.loaders.portfolios import portfolios
from api.graphql.loaders.users import users_by_id


class Loaders:
    def __init__(self, runtime, read):
        trading = runtime.trading
        self.accounts = accounts_by_id(read)
        self.active_bots = active_bots_by_owner(read)
        self.audit_pages = audit_pages(read)
        self.backtest_rows = backtest_rows(read)
        self.backtest_results = backtest_results(runtime.backtests)
        self.stored_backtests = stored_backtests(trading)
        self.bot_configs = configs_by_bot(trading, read)
        self.bot_pages = bot_pages(read)
        self.bot_pnl = pnl_by_bot(read)
        self.bots = bots_by_id(read)
        self.deal_pages = deal_pages(read)
        self.deal_pnl = pnl_by_deal(read)
        self.deals = deals_by_id(read)
        self.fills = fills_by_deal(trading, read)
        self.histories = histories(trading, read)
        self.leaderboards = leaderboards(read)
        self.orders = orders_by_deal(read)
        self.pnl_series = pnl_series_by_bot(read)
        self.portfolios = portfolios(trading, read)
        self.users = users_by_id(runtime.identity)
