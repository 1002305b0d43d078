"""register, verifyEmail, login, refresh, logout. Public (they are how a caller gets a
token); failures are typed results, never a hint whether an email is registered."""

from __future__ import annotations

import asyncio
import logging

import strawberry
from strawberry.types import Info

from api.graphql.accounts.types import (
    AuthError,
    AuthPayload,
    AuthResult,
    LogoutPayload,
    LogoutResult,
    RegisterPayload,
    RegisterResult,
    User,
    VerifyEmailResult,
)
from api.graphql.bots.plan import InputErrors
from api.graphql.commands import execute
from api.graphql.common import FieldError, field_error
from api.graphql.permissions import Public
from domain.credentials import WeakPasswordError
from domain.errors import DomainError


def _auth_error(error: DomainError) -> AuthError:
    # One line, never the email or the password (see api/graphql/errors.py).
    logging.getLogger("tradetape.graphql").warning("graphql refused code=%s", error.code)
    return AuthError(code=error.code, message=error.message)


@strawberry.type
class AccountMutations:
    @strawberry.mutation(permission_classes=[Public], description=(
        "A new account with a paper balance; a verification token is mailed. Answers "
        "alike whether or not the email is registered (its owner is told by mail)"))
    async def register(self, info: Info, email: str, password: str,
                       display_name: str | None = None) -> RegisterResult:
        ctx = info.context
        try:
            view = await execute(ctx.runtime, lambda: ctx.runtime.identity.sign_up(
                email, password, display_name=display_name, ip=ctx.client_ip))
        except WeakPasswordError as error:
            return InputErrors.of([FieldError(code=v.code, message=v.message, field="password")
                                   for v in error.violations])
        except DomainError as error:
            return InputErrors.of([field_error(error)])
        return RegisterPayload(user=User.of(view), verification_sent=True)

    @strawberry.mutation(permission_classes=[Public])
    async def verify_email(self, info: Info, token: str) -> VerifyEmailResult:
        identity = info.context.runtime.identity
        try:
            view = await execute(info.context.runtime, lambda: identity.verify_email(token))
        except DomainError as error:
            return _auth_error(error)
        return User.of(view)

    @strawberry.mutation(permission_classes=[Public])
    async def login(self, info: Info, email: str, password: str) -> AuthResult:
        ctx = info.context
        ip = ctx.client_ip
        delay = ctx.runtime.identity.login_delay(email)
        if delay:  # an account under attack: slowed down, not locked
            await asyncio.sleep(delay)
        try:
            tokens = await execute(ctx.runtime, lambda: ctx.runtime.identity.login(
                email, password, ip))
        except DomainError as error:
            return _auth_error(error)
        return AuthPayload.of(tokens)

    @strawberry.mutation(permission_classes=[Public], description=(
        "New tokens for a refresh token (which is spent)"))
    async def refresh(self, info: Info, refresh_token: str) -> AuthResult:
        identity = info.context.runtime.identity
        try:
            tokens = await execute(info.context.runtime, lambda: identity.refresh(
                refresh_token))
        except DomainError as error:
            return _auth_error(error)
        return AuthPayload.of(tokens)

    @strawberry.mutation(permission_classes=[Public], description=(
        "End the session of the given refresh token, else of the bearer access token"))
    async def logout(self, info: Info, refresh_token: str | None = None) -> LogoutResult:
        ctx = info.context
        token = refresh_token or ctx.token
        if not token:
            return AuthError(code="AUTHENTICATION_REQUIRED", message="no token to log out")
        try:
            await execute(ctx.runtime, lambda: ctx.runtime.identity.logout(token))
        except DomainError as error:
            return _auth_error(error)
        return LogoutPayload(logged_out=True)
