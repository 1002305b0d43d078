"""Sessions: login, token refresh with rotation, logout and authentication.

The half of the identity service that proves who is calling. :class:`Identity` extends it
with registration, passwords and administration; construct that one.

- An access token is short-lived and signed (``TokenSigner``); checking one still reads the
  user, so blocking, logout and password changes take effect at once.
- A refresh token is ``rt.<user hex>.<session hex>.<secret>``; only its SHA-256 is recorded.
  Each refresh spends it and hands out a new one. Presenting a spent token again means it
  was copied: the session is ended (both copies die) and ``SESSION_REVOKED`` is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from application.identity_settings import IdentitySettings
from application.login_limits import FailedLoginLimiter
from application.trading import Trading
from application.user_views import AuthTokens, Principal, UserView, view_of
from domain.credentials import digests_match, normalize_email, token_digest
from domain.errors import DomainError, NotFoundError
from domain.ports import (
    AccessClaims,
    DataKeyStore,
    EmailIndex,
    Mailer,
    PasswordHasher,
    SecretSource,
    TokenSigner,
)
from domain.users import AuthenticationError, User

_REFRESH_PREFIX = "rt"


class Sessions:
    def __init__(self, trading: Trading, *, hasher: PasswordHasher, keys: DataKeyStore,
                 emails: EmailIndex, signer: TokenSigner, secrets: SecretSource,
                 mailer: Mailer, settings: IdentitySettings | None = None,
                 limiter: FailedLoginLimiter | None = None,
                 on_close: Callable[[], None] | None = None):
        self.trading = trading
        self.settings = settings = settings or IdentitySettings()
        self._hasher, self._keys, self._emails = hasher, keys, emails
        self._signer, self._secrets, self._mailer = signer, secrets, mailer
        self._limiter = limiter or FailedLoginLimiter(
            trading.clock, per_account=settings.failed_logins_per_account,
            per_ip=settings.failed_logins_per_ip, window=settings.failed_login_window)
        self._on_close = on_close

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    @property
    def data_keys(self) -> DataKeyStore:
        """The per-user data keys: other services seal their owners' secrets with them
        (exchange API keys, ``application.exchange_accounts``)."""
        return self._keys

    @property
    def secret_source(self) -> SecretSource:
        """Where new random secrets come from (webhook secrets, ``application.webhooks``)."""
        return self._secrets

    def login(self, email: str, password: str, ip: str | None = None) -> AuthTokens:
        """``INVALID_CREDENTIALS`` alike for an unknown email and a wrong password (and
        as slow); ``ACCOUNT_BLOCKED`` only to someone who knows the password."""
        self._limiter.check(email, ip)
        user = self._quiet_lookup(email)
        if not self._hasher.verify(password, self._password_hash(user)):
            self._limiter.record_failure(email, ip)
            raise AuthenticationError("wrong email or password", code="INVALID_CREDENTIALS")
        assert user is not None
        if user.blocked:
            raise AuthenticationError("the account is blocked", code="ACCOUNT_BLOCKED")
        self._limiter.record_success(email, ip)
        session_id = self.trading.ids.new_id()
        refresh = self._refresh_token(user.id, session_id)
        cause = self.trading.cause(str(user.id))
        started = self._change(
            user.id, lambda u: u.start_session(cause, session_id, token_digest(refresh)))
        return self._tokens(started, session_id, refresh, cause.at)

    def login_delay(self, email: str) -> float:
        """Seconds a login attempt on ``email`` should wait before it is answered: 0 until
        the account has had several recent failures, then growing (see ``login_limits``).
        The caller waits, so guessing slows down while the owner can still get in."""
        return self._limiter.delay(email)

    def refresh(self, refresh_token: str) -> AuthTokens:
        """New access and refresh tokens; the presented refresh token is spent."""
        user_id, session_id, digest = _parse_refresh_token(refresh_token)
        user = self._load_authenticated(user_id)
        cause = self.trading.cause(str(user_id))
        session = user.live_session(session_id, cause.at)
        if digests_match(session.previous_digest, digest):
            self._change(user_id, lambda u: u.end_session(cause, session_id,
                                                          "refresh token reused"))
            raise AuthenticationError("that refresh token was already used; the session "
                                      "is ended, log in again", code="SESSION_REVOKED")
        refresh = self._refresh_token(user_id, session_id)
        refreshed = self._change(user_id, lambda u: u.refresh_session(
            cause, session_id, digest, token_digest(refresh)))
        return self._tokens(refreshed, session_id, refresh, cause.at)

    def logout(self, token: str) -> None:
        """End the session of an access token (even an expired one) or of a refresh
        token. Logging out of an ended session does nothing."""
        if token.startswith(f"{_REFRESH_PREFIX}."):
            user_id, session_id, digest = _parse_refresh_token(token)
            session = self._load_authenticated(user_id).sessions.get(session_id)
            if session is not None and not digests_match(session.refresh_digest, digest):
                raise AuthenticationError("that refresh token is not valid")
        else:
            claims = self._signer.read(token)
            if claims is None:
                raise AuthenticationError("that is not a valid token")
            user_id, session_id = claims.user_id, claims.session_id
        cause = self.trading.cause(str(user_id))
        self._change(user_id, lambda u: u.end_session(cause, session_id, "logout"))

    def access_token_expiry(self, access_token: str) -> datetime | None:
        """When a validly signed access token expires (None: not one of ours). Says nothing
        of its user or session: :meth:`authenticate` does."""
        claims = self._signer.read(access_token)
        return None if claims is None else claims.expires_at

    def authenticate(self, access_token: str | None) -> Principal:
        """Who holds ``access_token``: ``AUTHENTICATION_REQUIRED`` (missing or forged),
        ``TOKEN_EXPIRED``, ``SESSION_REVOKED`` or ``ACCOUNT_BLOCKED`` otherwise."""
        claims = self._signer.read(access_token or "")
        if claims is None:
            raise AuthenticationError("log in first: no valid access token")
        now = self.trading.clock.now()
        if now >= claims.expires_at:
            raise AuthenticationError("the access token expired; refresh it",
                                      code="TOKEN_EXPIRED")
        user = self._load_authenticated(claims.user_id)
        user.live_session(claims.session_id, now)
        return Principal(user.id, user.role, user.email_verified, claims.session_id)

    # --- plumbing shared with Identity ----------------------------------------------------

    def _tokens(self, user: User, session_id: UUID, refresh: str, now: datetime
                ) -> AuthTokens:
        expires_at = min(now + self.settings.access_token_lifetime,
                         user.sessions[session_id].expires_at)
        access = self._signer.sign(AccessClaims(user.id, session_id, user.role.value,
                                                expires_at))
        return AuthTokens(access, refresh, expires_at, view_of(user, self._keys))

    def _refresh_token(self, user_id: UUID, session_id: UUID) -> str:
        return f"{_REFRESH_PREFIX}.{user_id.hex}.{session_id.hex}.{self._secrets.new_secret()}"

    def _load(self, user_id: UUID, missing: str = "NOT_FOUND") -> User:
        try:
            return self.trading.load(user_id, User)
        except NotFoundError:
            raise NotFoundError(f"no user {user_id}", code=missing) from None

    def _load_authenticated(self, user_id: UUID) -> User:
        try:
            return self.trading.load(user_id, User)
        except NotFoundError:
            raise AuthenticationError("that token names no user") from None

    def _change(self, user_id: UUID, command: Callable[[User], Any],
                missing: str = "NOT_FOUND") -> User:
        """Load, decide, save; decided once more on fresh state if another writer won."""
        try:
            return self.trading._change(user_id, User, command, idempotent=True)
        except NotFoundError as error:
            if error.code != NotFoundError.code:
                raise
            raise NotFoundError(f"no user {user_id}", code=missing) from None

    def _quiet_lookup(self, email: str) -> User | None:
        """The user with this email, or None (also for a malformed or forgotten one)."""
        try:
            user_id = self._emails.find(normalize_email(email))
        except DomainError:
            return None
        user = None if user_id is None else self._load(user_id)
        return None if user is None or user.erased else user

    def _password_hash(self, user: User | None) -> str | None:
        if user is None or user.erased:
            return None
        return self._keys.unseal(user.id, "password_hash", user.sealed_password_hash)

    def _view(self, user: User) -> UserView:
        return view_of(user, self._keys)


def _parse_refresh_token(token: str) -> tuple[UUID, UUID, str]:
    parts = (token or "").strip().split(".")
    try:
        if len(parts) != 4 or parts[0] != _REFRESH_PREFIX or not parts[3]:
            raise ValueError
        return UUID(hex=parts[1]), UUID(hex=parts[2]), token_digest(token.strip())
    except ValueError:
        raise AuthenticationError("that is not a valid refresh token") from None
