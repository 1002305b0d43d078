"""The Identity service: users, credentials and sessions, recorded in Trading's one log.

Personal data is sealed under each user's data key (``DataKeyStore``, outside the log) and
found by email through an ``EmailIndex``; ``forget`` destroys the key (crypto-shredding).
Login, refresh, logout and authentication live in :class:`~application.sessions.Sessions`,
which this class extends (its constructor takes the ports). Permission checks belong to the
caller (the API), except that an ``actor`` naming a user must be an admin for the admin
commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from application.registration_limits import RegistrationLimiter, TooManyMailRequestsError
from application.sessions import Sessions
from application.user_views import UserView, pause_running_bots, registered_user_ids
from domain.accounts import AccountKind, ExchangeAccount
from domain.credentials import NewPassword, display_name_of, normalize_email, token_digest
from domain.errors import DomainError
from domain.recording import SYSTEM, Cause
from domain.rosters import BotRoster
from domain.users import AuthenticationError, Role, User


class Identity(Sessions):
    """Users and credentials over ``Trading``: ``Identity(trading, hasher=..., keys=...,
    emails=..., signer=..., secrets=..., mailer=...)``, or ``bootstrap_identity.open_identity``."""

    def __init__(self, *args: Any, registrations: RegistrationLimiter | None = None,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._registrations = registrations or RegistrationLimiter(
            self.trading.clock, per_ip=self.settings.registrations_per_ip,
            per_address=self.settings.registrations_per_address,
            window=self.settings.registration_window)
        # Resending a verification and asking for a reset each send a mail: limited alike,
        # each on its own (a user who asked thrice for a verification may still reset).
        self._mail_requests = {kind: RegistrationLimiter(
            self.trading.clock, per_ip=self.settings.registrations_per_ip,
            per_address=self.settings.registrations_per_address,
            window=self.settings.registration_window, error=TooManyMailRequestsError)
            for kind in ("verification", "reset")}

    def use_public_url(self, url: str) -> None:
        """Where links in mails point from now on (the server's address once it is known)."""
        self.settings = replace(self.settings, public_url=url.rstrip("/"))

    # --- registration and verification ----------------------------------------------------

    def sign_up(self, email: str, password: str, *, display_name: str | None = None,
                ip: str | None = None) -> UserView:
        """Registration open to anyone (the API's ``register``). Answers alike, in content
        and in the work done (a password hash, a mail), whether or not the address is
        registered: a new address gets its user and a verification mail; the owner of a
        registered one gets a mail saying so (or a fresh verification token, if still
        unverified), and the caller a look-alike of a new user, never stored. Limited per
        address asking and per email (``TOO_MANY_REGISTRATIONS``)."""
        self._registrations.check(normalize_email(email), ip)
        address, new_password = normalize_email(email), NewPassword(password)
        name = display_name_of(display_name)
        self._registrations.record(address, ip)
        if self._emails.find(address) is None:
            try:
                return self.get_user(self.register(address, password, display_name=name))
            except DomainError as error:
                if error.code != "EMAIL_TAKEN":  # else: lost a race for the address
                    raise
        self._hasher.hash(new_password)  # the work a registration does
        self._tell_the_owner(address)
        return self._look_alike(address, name)

    def _tell_the_owner(self, address: str) -> None:
        user = self._quiet_lookup(address)
        if user is not None and not user.email_verified:
            self.request_verification(address)
            return
        self._mailer.send(address, "Your Tradetape account",
                          "Someone, maybe you, tried to register with this address, which "
                          "already has an account.\nLog in, or reset your password at "
                          f"{self.settings.public_url}/reset-password.")

    def _look_alike(self, address: str, name: str | None) -> UserView:
        ids = self.trading.ids
        return UserView(id=ids.new_id(), email=address, display_name=name, role=Role.USER,
                        email_verified=False, blocked=False, erased=False,
                        paper_account_id=ids.new_id(), registered_at=self.trading.clock.now())

    def register(self, email: str, password: str, *, display_name: str | None = None,
                 role: Role | str = Role.USER, verified: bool = False,
                 actor: str | None = None) -> UUID:
        """A new user with a paper exchange account holding the starting balance, saved in
        one transaction. Unless ``verified`` (an operator vouches), a verification token is
        mailed; if that mail fails, ``MAIL_NOT_SENT`` is raised after the user was saved
        (``request_verification`` sends another)."""
        address, new_password = normalize_email(email), NewPassword(password)
        display_name = display_name_of(display_name)
        role = Role.parse(role)
        if self._emails.find(address) is not None:
            raise _email_taken()
        user_id, account_id = self.trading.ids.new_id(), self.trading.ids.new_id()
        hashed = self._hasher.hash(new_password)
        cause = self.trading.cause(actor or str(user_id))
        token = None if verified else self._mail_token(user_id)

        def aggregates() -> tuple[User, ExchangeAccount, BotRoster]:
            user = self._new_user(user_id, account_id, cause, address, hashed, role,
                                  display_name)
            if token is None:
                user.confirm_email(cause)
            else:
                user.issue_verification(cause, token_digest(token))
            # An empty roster now spares the user's first bot a search of the log for bots.
            return (user, self._paper_account(account_id, user_id, cause),
                    BotRoster.open(str(user_id), cause, {}))

        self._save_new_user(user_id, address, aggregates)
        if token is not None:
            self._send_verification(address, token)
        return user_id

    def _save_new_user(self, user_id: UUID, address: str,
                       aggregates: Callable[[], tuple[User, ExchangeAccount, BotRoster]]
                       ) -> None:
        """Data key, email claim and events: all of them, or none (undone on failure)."""
        self._keys.create_key(user_id)
        try:
            if not self._emails.claim(address, user_id):  # lost a race for the address
                raise _email_taken()
            try:
                self.trading.save_all(*aggregates())
            except Exception:
                self._emails.release(user_id)
                raise
        except Exception:
            self._keys.destroy_key(user_id)
            raise

    def _new_user(self, user_id: UUID, account_id: UUID, cause: Cause, address: str,
                  hashed: str, role: Role, display_name: str | None) -> User:
        seal = self._keys.seal
        name = (display_name or "").strip() or None
        return User.register(
            user_id, cause, role=role, sealed_email=seal(user_id, "email", address),
            sealed_password_hash=seal(user_id, "password_hash", hashed),
            sealed_display_name=None if name is None else seal(user_id, "display_name", name),
            paper_account_id=account_id)

    def _paper_account(self, account_id: UUID, user_id: UUID, cause: Cause) -> ExchangeAccount:
        quote = self.settings.quote_asset
        account = ExchangeAccount.open(account_id, cause, owner_id=str(user_id),
                                       kind=AccountKind.PAPER,
                                       exchange=self.settings.paper_exchange, quote_asset=quote)
        if self.settings.starting_balance > Decimal(0):
            account.deposit(cause, quote, self.settings.starting_balance)
        return account

    def verify_email(self, token: str) -> UserView:
        user_id, digest = _parse_mail_token(token, "VERIFICATION_TOKEN")
        cause = self.trading.cause(str(user_id))
        return self._view(self._change(user_id, lambda u: u.verify_email(cause, digest),
                                       missing="VERIFICATION_TOKEN_INVALID"))

    def verify_email_outcome(self, token: str) -> str:
        """``verified`` (now) or ``already_verified`` (the address was verified before:
        nothing is recorded); an invalid or expired token raises as ``verify_email``."""
        user_id, _ = _parse_mail_token(token, "VERIFICATION_TOKEN")
        user = self._load(user_id, missing="VERIFICATION_TOKEN_INVALID")
        if user.email_verified and not user.erased:
            return "already_verified"
        self.verify_email(token)
        return "verified"

    def resend_verification(self, email: str, ip: str | None = None) -> None:
        """The API's ``resendVerification``: limited like registrations
        (``TOO_MANY_MAIL_REQUESTS``), counted whether or not the address is registered."""
        address = self._count_mail_request("verification", email, ip)
        self.request_verification(address)

    def ask_password_reset(self, email: str, ip: str | None = None) -> None:
        """The API's ``requestPasswordReset``: limited as ``resend_verification``."""
        address = self._count_mail_request("reset", email, ip)
        self.request_password_reset(address)

    def _count_mail_request(self, kind: str, email: str, ip: str | None) -> str:
        address, limiter = normalize_email(email), self._mail_requests[kind]
        limiter.check(address, ip)
        limiter.record(address, ip)
        return address

    def confirm_email(self, user_id: UUID, actor: str = SYSTEM) -> UserView:
        """An operator marks the address verified, without a token."""
        self._require_admin(actor)
        cause = self.trading.cause(actor)
        return self._view(self._change(user_id, lambda u: u.confirm_email(cause)))

    def request_verification(self, email: str) -> None:
        """Mail a fresh verification token; silent when there is nothing to verify."""
        user = self._quiet_lookup(email)
        if user is None or user.email_verified:
            return
        token = self._mail_token(user.id)
        cause = self.trading.cause(str(user.id))
        self._change(user.id, lambda u: u.issue_verification(cause, token_digest(token)))
        self._send_verification(normalize_email(email), token)

    # --- passwords ------------------------------------------------------------------------

    def change_password(self, user_id: UUID, current_password: str, new_password: str,
                        kept_session_id: UUID | None = None, ip: str | None = None) -> None:
        """Ends every session of the user but ``kept_session_id`` (the caller's own). A wrong
        current password counts as a failed login (a stolen access token must not become a
        way to guess the password), and the login limits apply to it."""
        new = NewPassword(new_password)
        user = self._load(user_id)
        email = self._view(user).email
        self._limiter.check(email, ip)
        if not self._hasher.verify(current_password, self._password_hash(user)):
            self._limiter.record_failure(email, ip)
            raise AuthenticationError("the current password is wrong",
                                      code="INVALID_CREDENTIALS")
        sealed = self._keys.seal(user_id, "password_hash", self._hasher.hash(new))
        cause = self.trading.cause(str(user_id))
        self._change(user_id, lambda u: u.change_password(cause, sealed, kept_session_id))

    def request_password_reset(self, email: str) -> None:
        """Mail a reset token. Answers the same whether or not the email is registered."""
        user = self._quiet_lookup(email)
        if user is None or user.blocked:
            return
        token = self._mail_token(user.id)
        cause = self.trading.cause(str(user.id))
        self._change(user.id, lambda u: u.request_password_reset(cause, token_digest(token)))
        link = f"{self.settings.public_url}/reset-password?token={token}"
        self._mailer.send(normalize_email(email), "Reset your Tradetape password",
                          f"Open {link}\nor use this token: {token}\nIt expires in 24 hours.")

    def reset_password(self, token: str, new_password: str) -> None:
        new = NewPassword(new_password)
        user_id, digest = _parse_mail_token(token, "RESET_TOKEN")
        user = self._load(user_id, missing="RESET_TOKEN_INVALID")
        cause = self.trading.cause(str(user_id))
        user.check_reset_token(cause.at, digest)  # before paying for a bcrypt hash
        sealed = self._keys.seal(user_id, "password_hash", self._hasher.hash(new))
        self._change(user_id, lambda u: u.reset_password(cause, digest, sealed))

    # --- administration -------------------------------------------------------------------

    def block(self, user_id: UUID, actor: str = SYSTEM) -> UserView:
        """Ends the user's sessions (their tokens stop working) and pauses their running
        bots. Unblocking does not restart the bots: their owner does."""
        self._require_admin(actor)
        cause = self.trading.cause(actor)
        view = self._view(self._change(user_id, lambda u: u.block(cause)))
        pause_running_bots(self.trading, str(user_id), actor)
        return view

    def unblock(self, user_id: UUID, actor: str = SYSTEM) -> UserView:
        self._require_admin(actor)
        cause = self.trading.cause(actor)
        return self._view(self._change(user_id, lambda u: u.unblock(cause)))

    def set_role(self, user_id: UUID, role: Role | str, actor: str = SYSTEM) -> UserView:
        self._require_admin(actor)
        cause = self.trading.cause(actor)
        return self._view(self._change(user_id, lambda u: u.change_role(cause, role)))

    def forget(self, user_id: UUID, actor: str = SYSTEM) -> UserView:
        """Crypto-shred: record ``Forgotten``, then destroy the data key and the email
        index entry. Every stored event stays as it was; the person becomes unreadable.
        Running bots are paused. Safe to repeat (a crash halfway is finished by a rerun)."""
        self._require_admin(actor, allow_self=user_id)
        cause = self.trading.cause(actor)
        self._change(user_id, lambda u: u.forget(cause))
        self._keys.destroy_key(user_id)
        self._emails.release(user_id)
        pause_running_bots(self.trading, str(user_id), actor)
        return self.get_user(user_id)

    def rebuild_email_index(self) -> int:
        """Rebuild the email index from the events and the data keys; the users indexed."""
        self._emails.clear()
        count = 0
        for user_id in registered_user_ids(self.trading):
            view = self.get_user(user_id)
            if not view.erased and self._emails.claim(view.email, user_id):
                count += 1
        return count

    # --- queries --------------------------------------------------------------------------

    def get_user(self, user_id: UUID) -> UserView:
        return self._view(self._load(user_id))

    def find_user(self, email: str) -> UserView | None:
        user = self._quiet_lookup(email)
        return None if user is None else self._view(user)

    def list_users(self) -> list[UserView]:
        return [self.get_user(user_id) for user_id in registered_user_ids(self.trading)]

    # --- plumbing -------------------------------------------------------------------------

    def _require_admin(self, actor: str, allow_self: UUID | None = None) -> None:
        try:
            actor_id = UUID(actor)
        except ValueError:
            return  # the system or an operator at the command line
        if actor_id == allow_self:
            return
        if self._load(actor_id).role is not Role.ADMIN:
            raise DomainError("only an admin can do that", code="ADMIN_REQUIRED")

    def _mail_token(self, user_id: UUID) -> str:
        return f"{user_id.hex}.{self._secrets.new_secret()}"

    def _send_verification(self, address: str, token: str) -> None:
        link = f"{self.settings.public_url}/verify-email?token={token}"
        self._mailer.send(address, "Verify your Tradetape email",
                          f"Open {link}\nor use this token: {token}\nIt expires in 24 hours.")


def _email_taken() -> DomainError:
    return DomainError("that email is already registered", code="EMAIL_TAKEN", field="email")


def _parse_mail_token(token: str, kind: str) -> tuple[UUID, str]:
    """A mailed token is ``<user id hex>.<secret>``; the user part finds the aggregate."""
    user_hex, dot, secret = (token or "").strip().partition(".")
    try:
        if not dot or not secret:
            raise ValueError
        return UUID(hex=user_hex), token_digest(token.strip())
    except ValueError:
        raise DomainError("the token is not valid", code=f"{kind}_INVALID") from None
