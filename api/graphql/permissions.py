"""Permission classes: every root field declares one (a schema-wide test holds it).

Authentication failures raise an error whose ``extensions.code`` says why
(``AUTHENTICATION_REQUIRED``, ``TOKEN_EXPIRED``, ``SESSION_REVOKED``, ``ACCOUNT_BLOCKED``).
The caller is authenticated on a worker thread (it reads the user's events): the event loop
never waits for the database. Ownership is not a permission: a resolver answers "not found"
(or null) for what is not the caller's, so nothing leaks whether it exists.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info


class Public(BasePermission):
    """Anyone, signed in or not (registration, login, the public leaderboard, ...)."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return True


class IsAuthenticated(BasePermission):
    message = "log in first"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.authenticated()  # raises the authentication error
        return True


class IsAdmin(BasePermission):
    message = "only an administrator can do that"
    error_extensions = {"code": "ADMIN_REQUIRED"}  # noqa: RUF012 (strawberry's class API)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return (await info.context.authenticated()).is_admin


class IsAdminAnsweringErrors(IsAdmin):
    """An administrator's command whose refusal, for anyone else, is its error union's
    ``ADMIN_REQUIRED`` rather than a top-level error: the resolver checks ``is_admin``."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.authenticated()  # raises the authentication error
        return True


def authentication_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})
