"""resendVerification, requestPasswordReset, resetPassword, changePassword. The two that
send a mail answer alike whether or not the address is registered (and are limited like
``register``); tokens and passwords are never logged."""

from __future__ import annotations

import logging
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.graphql.accounts.mutations import _auth_error
from api.graphql.accounts.types import AuthError
from api.graphql.bots.plan import InputErrors
from api.graphql.commands import execute
from api.graphql.common import FieldError, field_error
from api.graphql.permissions import IsAuthenticated, Public
from domain.credentials import WeakPasswordError
from domain.errors import DomainError

LOG = logging.getLogger("tradetape.graphql")


@strawberry.type
class MailRequestPayload:
    """Always ``accepted: true``: the answer tells nothing about the address. A mail goes
    out only when there is something to send (an unverified account; any usable account
    for a reset)."""

    accepted: bool


@strawberry.type
class PasswordPayload:
    changed: bool


MailRequestResult = Annotated[MailRequestPayload | InputErrors,
                              strawberry.union("MailRequestResult")]
PasswordResult = Annotated[PasswordPayload | AuthError | InputErrors,
                           strawberry.union("PasswordResult")]


@strawberry.type
class PasswordMutations:
    @strawberry.mutation(permission_classes=[Public], description=(
        "Mail a fresh verification link if the address has an unverified account. Answers "
        "alike whatever the address; limited like register (TOO_MANY_MAIL_REQUESTS)"))
    async def resend_verification(self, info: Info, email: str) -> MailRequestResult:
        ctx = info.context
        return await _mail_request(info, lambda: ctx.runtime.identity.resend_verification(
            email, ctx.client_ip))

    @strawberry.mutation(permission_classes=[Public], description=(
        "Mail a single-use password reset link (valid 24 hours) if the address has an "
        "account. Answers alike whatever the address; limited like register"))
    async def request_password_reset(self, info: Info, email: str) -> MailRequestResult:
        ctx = info.context
        return await _mail_request(info, lambda: ctx.runtime.identity.ask_password_reset(
            email, ctx.client_ip))

    @strawberry.mutation(permission_classes=[Public], description=(
        "Set a new password with a mailed reset token (spent by it); ends every session"))
    async def reset_password(self, info: Info, token: str, new_password: str
                             ) -> PasswordResult:
        identity = info.context.runtime.identity
        return await _password_change(info, lambda: identity.reset_password(
            token, new_password))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Change the caller's password; every other session of the caller ends"))
    async def change_password(self, info: Info, current_password: str, new_password: str
                              ) -> PasswordResult:
        ctx = info.context
        principal = ctx.principal
        return await _password_change(info, lambda: ctx.runtime.identity.change_password(
            principal.user_id, current_password, new_password, principal.session_id,
            ctx.client_ip))


async def _mail_request(info: Info, command) -> MailRequestResult:
    try:
        await execute(info.context.runtime, command)
    except DomainError as error:
        if error.code != "MAIL_NOT_SENT":  # else: answered alike, the operator is told
            return InputErrors.of([field_error(error)])
        LOG.warning("mail not sent code=%s", error.code)
    return MailRequestPayload(accepted=True)


async def _password_change(info: Info, command) -> PasswordResult:
    try:
        await execute(info.context.runtime, command)
    except WeakPasswordError as error:
        return InputErrors.of([FieldError(code=v.code, message=v.message, field="newPassword")
                               for v in error.violations])
    except DomainError as error:
        return _auth_error(error)
    return PasswordPayload(changed=True)
