"""Users and the answers of the account mutations. No field ever carries a password hash,
a sealed value or a token digest."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from api.graphql.bots.plan import InputErrors
from api.graphql.common import Error
from application.user_views import AuthTokens, UserView


@strawberry.enum
class Role(Enum):
    USER = "user"
    PROVIDER = "provider"
    ADMIN = "admin"


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    display_name: str | None
    role: Role
    email_verified: bool
    blocked: bool
    erased: bool
    paper_account_id: strawberry.ID
    registered_at: datetime

    @classmethod
    def of(cls, view: UserView) -> User:
        return cls(id=strawberry.ID(str(view.id)), email=view.email,
                   display_name=view.display_name, role=Role(view.role.value),
                   email_verified=view.email_verified, blocked=view.blocked,
                   erased=view.erased, paper_account_id=strawberry.ID(
                       str(view.paper_account_id)), registered_at=view.registered_at)


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    expires_at: datetime
    user: User

    @classmethod
    def of(cls, tokens: AuthTokens) -> AuthPayload:
        return cls(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                   expires_at=tokens.expires_at, user=User.of(tokens.user))


@strawberry.type
class AuthError(Error):
    """INVALID_CREDENTIALS, ACCOUNT_BLOCKED, TOO_MANY_ATTEMPTS, TOKEN_EXPIRED,
    SESSION_REVOKED, VERIFICATION_TOKEN_INVALID, ..."""


@strawberry.type
class RegisterPayload:
    user: User
    verification_sent: bool


@strawberry.type
class LogoutPayload:
    logged_out: bool


AuthResult = Annotated[AuthPayload | AuthError, strawberry.union("AuthResult")]
RegisterResult = Annotated[RegisterPayload | InputErrors, strawberry.union("RegisterResult")]
VerifyEmailResult = Annotated[User | AuthError, strawberry.union("VerifyEmailResult")]
LogoutResult = Annotated[LogoutPayload | AuthError, strawberry.union("LogoutResult")]
