"""Permission classes: every root field declares one (a schema-wide test holds it).

Authentication failures raise an error whose ``extensions.code`` says why
(``AUTHENTICATION_REQUIRED``, ``TOKEN_EXPIRED``, ``SESSION_REVOKED``, ``ACCOUNT_BLOCKED``).
Ownership is not a permission: a resolver answers "not found" (or null) for what is not the
caller's, so nothing leaks whether it exists.
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

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.principal  # noqa: B018 (raises the authentication error)
        return True


class IsAdmin(BasePermission):
    message = "only an administrator can do that"
    error_extensions = {"code": "ADMIN_REQUIRED"}  # noqa: RUF012 (strawberry's class API)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.is_admin


class IsAdminAnsweringErrors(IsAdmin):
    """An administrator's command whose refusal, for anyone else, is its error union's
    ``ADMIN_REQUIRED`` rather than a top-level error: the resolver checks ``is_admin``."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.principal  # noqa: B018 (raises the authentication error)
        return True


def authentication_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})
