"""The schema: each feature's queries, mutations and subscriptions merged into the root
types, with Decimals as strings and the depth, alias and cost limits."""

from __future__ import annotations

from functools import cache
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from api.graphql.accounts.mutations import AccountMutations
from api.graphql.accounts.passwords import PasswordMutations
from api.graphql.accounts.queries import AccountQueries
from api.graphql.admin.mutations import AdminMutations
from api.graphql.admin.projections import (
    ProjectionMutations,
    ProjectionQueries,
    ProjectionSubscriptions,
)
from api.graphql.admin.queries import AdminQueries
from api.graphql.audit.queries import AuditQueries
from api.graphql.backtests.mutations import BacktestMutations
from api.graphql.backtests.queries import BacktestQueries
from api.graphql.backtests.subscriptions import BacktestSubscriptions
from api.graphql.billing.mutations import BillingMutations
from api.graphql.billing.queries import BillingQueries
from api.graphql.billing.wallet import WalletMutations, WalletQueries
from api.graphql.bots.mutations import BotMutations
from api.graphql.bots.plan import PlanQueries
from api.graphql.bots.queries import BotQueries
from api.graphql.bots.subscriptions import BotSubscriptions
from api.graphql.charts.candles import CandleQueries, PriceSubscriptions
from api.graphql.charts.fetches import (
    CandleFetchMutations,
    CandleFetchQueries,
    CandleFetchSubscriptions,
)
from api.graphql.charts.queries import ChartQueries
from api.graphql.deals.mutations import DealMutations
from api.graphql.deals.orders import OrderQueries
from api.graphql.deals.queries import DealQueries
from api.graphql.deals.subscriptions import DealSubscriptions
from api.graphql.errors import ErrorCodes, MaskFaults, log_errors, name_codes
from api.graphql.exchange_accounts.drift import DriftQueries
from api.graphql.exchange_accounts.mutations import ExchangeAccountMutations
from api.graphql.exchange_accounts.queries import ExchangeAccountQueries
from api.graphql.exits.mutations import ExitMutations
from api.graphql.funding.mutations import FundingMutations
from api.graphql.funding.queries import FundingQueries
from api.graphql.limits import limits
from api.graphql.portfolio.queries import PortfolioQueries
from api.graphql.portfolio.subscriptions import PortfolioSubscriptions
from api.graphql.positions.mutations import PositionMutations
from api.graphql.positions.queries import PositionQueries
from api.graphql.risk.mutations import RiskMutations
from api.graphql.risk.queries import RiskQueries
from api.graphql.scalars import SCALAR_MAP
from api.graphql.system.mutations import SystemMutations
from api.graphql.system.queries import SystemQueries
from api.graphql.webhooks.mutations import WebhookMutations
from api.graphql.webhooks.queries import WebhookQueries
from api.http_limits import RequestLimits

Query = merge_types("Query", (AccountQueries, BotQueries, DealQueries, PortfolioQueries,
                              AuditQueries, PlanQueries, SystemQueries,
                              ExchangeAccountQueries, DriftQueries, RiskQueries,
                              FundingQueries, BillingQueries, WalletQueries, PositionQueries,
                              WebhookQueries, ChartQueries, CandleQueries, BacktestQueries,
                              OrderQueries, AdminQueries, CandleFetchQueries,
                              ProjectionQueries))
Mutation = merge_types("Mutation", (AccountMutations, PasswordMutations, BotMutations,
                                    DealMutations, SystemMutations,
                                    ExchangeAccountMutations, RiskMutations, FundingMutations,
                                    BillingMutations, WalletMutations, PositionMutations,
                                    WebhookMutations, ExitMutations, BacktestMutations,
                                    AdminMutations, CandleFetchMutations, ProjectionMutations))
Subscription = merge_types("Subscription", (BotSubscriptions, PortfolioSubscriptions,
                                            PriceSubscriptions, BacktestSubscriptions,
                                            DealSubscriptions, CandleFetchSubscriptions,
                                            ProjectionSubscriptions))


DEFAULT_LIMITS = RequestLimits()


class Schema(strawberry.Schema):
    """Logs each error as one line (a fault with its traceback), never the document;
    names their codes here too, for the answers a subscription sends (which the
    operation hook of ``ErrorCodes`` does not see)."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: Any = None) -> None:
        name_codes(errors)
        log_errors(errors, execution_context)


@cache
def build_schema(request_limits: RequestLimits = DEFAULT_LIMITS) -> strawberry.Schema:
    return Schema(
        query=Query, mutation=Mutation, subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        # Parsing and validation are cached by document text (front ends send the same
        # documents again and again); the cost limit is not: it depends on the variables.
        # Faults are masked first, then every error left without a code gets one.
        extensions=[*limits(request_limits), ErrorCodes, MaskFaults])
