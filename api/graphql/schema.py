"""The schema: each feature's queries, mutations and subscriptions merged into the root
types, with Decimals as strings and the depth, alias and cost limits."""

from __future__ import annotations

from functools import cache

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from api.graphql.accounts.mutations import AccountMutations
from api.graphql.accounts.queries import AccountQueries
from api.graphql.audit.queries import AuditQueries
from api.graphql.bots.mutations import BotMutations
from api.graphql.bots.plan import PlanQueries
from api.graphql.bots.queries import BotQueries
from api.graphql.bots.subscriptions import BotSubscriptions
from api.graphql.deals.mutations import DealMutations
from api.graphql.deals.queries import DealQueries
from api.graphql.limits import limits
from api.graphql.portfolio.queries import PortfolioQueries
from api.graphql.portfolio.subscriptions import PortfolioSubscriptions
from api.graphql.scalars import SCALAR_MAP
from api.graphql.system.mutations import SystemMutations
from api.graphql.system.queries import SystemQueries

Query = merge_types("Query", (AccountQueries, BotQueries, DealQueries, PortfolioQueries,
                              AuditQueries, PlanQueries, SystemQueries))
Mutation = merge_types("Mutation", (AccountMutations, BotMutations, DealMutations,
                                    SystemMutations))
Subscription = merge_types("Subscription", (BotSubscriptions, PortfolioSubscriptions))


def _unexpected(error: GraphQLError) -> bool:
    """Mask what no resolver meant to say (it is logged); our own errors pass."""
    return error.original_error is not None and not isinstance(error.original_error,
                                                               GraphQLError)


@cache
def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query, mutation=Mutation, subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        # Parsing is cached (front ends send the same documents again and again);
        # validation is not: the cost limit depends on each request's variables.
        extensions=[lambda: ParserCache(maxsize=512), *limits(),
                    lambda: MaskErrors(should_mask_error=_unexpected)])
