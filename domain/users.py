"""The User aggregate: a person's account, credentials and sessions, event-sourced.

Nothing personal is recorded in clear. The email, display name and password hash arrive
*sealed* (encrypted under the user's own data key, held outside the log by a
``DataKeyStore``); tokens arrive as SHA-256 digests. Destroying the data key ("forget")
leaves every event intact, byte for byte, and makes the person unreadable.

Sessions end implicitly when the password changes (all but the one it was changed in), when
it is reset, when the user is blocked and when the user is forgotten: those events'
``apply`` clears them (a reader of the log must do the same). A session also lapses at
its ``expires_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from domain.credentials import digests_match
from domain.errors import DomainError, InvalidTransitionError
from domain.recording import Cause, TradetapeAggregate, ValueEnum

VERIFICATION_LIFETIME = timedelta(hours=24)
RESET_LIFETIME = timedelta(hours=24)
SESSION_LIFETIME = timedelta(days=30)


class Role(ValueEnum):
    USER = "user"
    PROVIDER = "provider"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: Role | str) -> Role:
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(r.value for r in cls)
            raise DomainError(f"{value!r} is not a role ({known})", code="INVALID_ROLE",
                              field="role") from None


class AuthenticationError(DomainError):
    """The caller could not be identified; ``code`` says why (expired, revoked, ...)."""

    code = "AUTHENTICATION_REQUIRED"


@dataclass(frozen=True)
class PendingToken:
    digest: str
    expires_at: datetime


@dataclass(frozen=True)
class Session:
    id: UUID
    refresh_digest: str
    # The digest this one replaced: seeing it again means a stolen, replayed refresh token.
    previous_digest: str | None
    expires_at: datetime


def _end_all_sessions(user: User) -> None:
    user.sessions = {}


class User(TradetapeAggregate):
    # Events store the role as its value (a str), so readers need no transcoding for it.
    role: Role
    sealed_email: str
    sealed_display_name: str | None
    sealed_password_hash: str
    paper_account_id: UUID
    email_verified: bool
    blocked: bool
    erased: bool
    verification: PendingToken | None
    reset: PendingToken | None
    sessions: dict[UUID, Session]

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below as a
        subclass of it (that doubled the cost of defining them)."""

    class Registered(TradetapeAggregate.Created, Event):
        role: str
        sealed_email: str
        sealed_display_name: str | None
        sealed_password_hash: str
        paper_account_id: UUID

        def apply(self, user: User) -> None:
            user.role = Role(self.role)
            user.sealed_email, user.sealed_display_name = (self.sealed_email,
                                                           self.sealed_display_name)
            user.sealed_password_hash = self.sealed_password_hash
            user.paper_account_id = self.paper_account_id
            user.email_verified = user.blocked = user.erased = False
            user.verification = user.reset = None
            user.sessions = {}

    class VerificationIssued(Event):
        token_digest: str
        expires_at: datetime

        def apply(self, user: User) -> None:
            user.verification = PendingToken(self.token_digest, self.expires_at)

    class EmailVerified(Event):
        def apply(self, user: User) -> None:
            user.email_verified, user.verification = True, None

    class PasswordChanged(Event):
        """Ends every session but ``kept_session_id`` (the one the change was made in)."""

        # v1 kept no session: every session ended.
        class_version = 2
        sealed_password_hash: str
        kept_session_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["kept_session_id"] = None

        def apply(self, user: User) -> None:
            user.sealed_password_hash, user.reset = self.sealed_password_hash, None
            kept = user.sessions.get(self.kept_session_id) if self.kept_session_id else None
            user.sessions = {} if kept is None else {kept.id: kept}

    class PasswordResetRequested(Event):
        token_digest: str
        expires_at: datetime

        def apply(self, user: User) -> None:
            user.reset = PendingToken(self.token_digest, self.expires_at)

    class PasswordReset(Event):
        """Ends every session."""

        sealed_password_hash: str

        def apply(self, user: User) -> None:
            user.sealed_password_hash, user.reset = self.sealed_password_hash, None
            _end_all_sessions(user)

    class Blocked(Event):
        """Ends every session."""

        def apply(self, user: User) -> None:
            user.blocked = True
            _end_all_sessions(user)

    class Unblocked(Event):
        def apply(self, user: User) -> None:
            user.blocked = False

    class RoleChanged(Event):
        role: str

        def apply(self, user: User) -> None:
            user.role = Role(self.role)

    class SessionStarted(Event):
        session_id: UUID
        refresh_digest: str
        expires_at: datetime

        def apply(self, user: User) -> None:
            # Lapsed sessions are dropped here, so the state does not grow without bound.
            user.sessions = {sid: s for sid, s in user.sessions.items()
                             if s.expires_at > self.timestamp}
            user.sessions[self.session_id] = Session(
                self.session_id, self.refresh_digest, None, self.expires_at)

    class SessionRefreshed(Event):
        session_id: UUID
        refresh_digest: str
        expires_at: datetime

        def apply(self, user: User) -> None:
            old = user.sessions[self.session_id]
            user.sessions[self.session_id] = Session(
                self.session_id, self.refresh_digest, old.refresh_digest, self.expires_at)

    class SessionEnded(Event):
        session_id: UUID
        reason: str

        def apply(self, user: User) -> None:
            user.sessions.pop(self.session_id, None)

    class Forgotten(Event):
        """The data key was destroyed (outside the log): sealed fields are unreadable now.
        Ends every session."""

        def apply(self, user: User) -> None:
            user.erased, user.verification, user.reset = True, None, None
            _end_all_sessions(user)

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def register(cls, user_id: UUID, cause: Cause, *, role: Role | str, sealed_email: str,
                 sealed_password_hash: str, paper_account_id: UUID,
                 sealed_display_name: str | None = None) -> User:
        return cls._start(cls.Registered, user_id, cause, role=Role.parse(role).value,
                          sealed_email=sealed_email, sealed_display_name=sealed_display_name,
                          sealed_password_hash=sealed_password_hash,
                          paper_account_id=paper_account_id)

    def issue_verification(self, cause: Cause, token_digest: str) -> None:
        self._check_present()
        if self.email_verified:
            raise InvalidTransitionError("the email is already verified",
                                         code="EMAIL_ALREADY_VERIFIED")
        self._record(self.VerificationIssued, cause, token_digest=token_digest,
                     expires_at=cause.at + VERIFICATION_LIFETIME)

    def verify_email(self, cause: Cause, token_digest: str) -> None:
        """With the token mailed to the address; verifying twice records nothing."""
        self._check_present()
        if self.email_verified:
            return
        self._check_token(self.verification, token_digest, cause.at, "VERIFICATION_TOKEN")
        self._record(self.EmailVerified, cause)

    def confirm_email(self, cause: Cause) -> None:
        """An operator vouches for the address (no token)."""
        self._check_present()
        if not self.email_verified:
            self._record(self.EmailVerified, cause)

    def change_password(self, cause: Cause, sealed_password_hash: str,
                        kept_session_id: UUID | None = None) -> None:
        """The caller has checked the current password (the domain cannot read hashes).
        Every session ends but ``kept_session_id``, the one the change was made in."""
        self._check_present()
        self._record(self.PasswordChanged, cause, sealed_password_hash=sealed_password_hash,
                     kept_session_id=kept_session_id)

    def request_password_reset(self, cause: Cause, token_digest: str) -> None:
        self._check_usable()
        self._record(self.PasswordResetRequested, cause, token_digest=token_digest,
                     expires_at=cause.at + RESET_LIFETIME)

    def check_reset_token(self, at: datetime, token_digest: str) -> None:
        self._check_usable()
        self._check_token(self.reset, token_digest, at, "RESET_TOKEN")

    def reset_password(self, cause: Cause, token_digest: str, sealed_password_hash: str) -> None:
        self.check_reset_token(cause.at, token_digest)
        self._record(self.PasswordReset, cause, sealed_password_hash=sealed_password_hash)

    def block(self, cause: Cause) -> None:
        self._check_present()
        if cause.actor == str(self.id):
            raise DomainError("you cannot block yourself", code="CANNOT_BLOCK_SELF")
        if not self.blocked:
            self._record(self.Blocked, cause)

    def unblock(self, cause: Cause) -> None:
        self._check_present()
        if self.blocked:
            self._record(self.Unblocked, cause)

    def change_role(self, cause: Cause, role: Role | str) -> None:
        self._check_present()
        role = Role.parse(role)
        if role is self.role:
            return
        if cause.actor == str(self.id):
            raise DomainError("you cannot change your own role", code="CANNOT_CHANGE_OWN_ROLE")
        self._record(self.RoleChanged, cause, role=role.value)

    def start_session(self, cause: Cause, session_id: UUID, refresh_digest: str) -> None:
        self._check_usable()
        if session_id in self.sessions:
            raise InvalidTransitionError("that session already exists", code="SESSION_EXISTS")
        self._record(self.SessionStarted, cause, session_id=session_id,
                     refresh_digest=refresh_digest, expires_at=cause.at + SESSION_LIFETIME)

    def refresh_session(self, cause: Cause, session_id: UUID, presented_digest: str,
                        new_digest: str) -> None:
        """Rotate: the presented refresh token is spent, ``new_digest`` replaces it."""
        session = self.live_session(session_id, cause.at)
        if not digests_match(session.refresh_digest, presented_digest):
            raise AuthenticationError("that refresh token is not valid")
        self._record(self.SessionRefreshed, cause, session_id=session_id,
                     refresh_digest=new_digest, expires_at=cause.at + SESSION_LIFETIME)

    def end_session(self, cause: Cause, session_id: UUID, reason: str) -> None:
        """Ending a session that is already over records nothing."""
        if session_id in self.sessions:
            self._record(self.SessionEnded, cause, session_id=session_id, reason=reason)

    def forget(self, cause: Cause) -> None:
        if not self.erased:
            self._record(self.Forgotten, cause)

    # --- queries --------------------------------------------------------------------------

    def live_session(self, session_id: UUID, at: datetime) -> Session:
        """The session, if the user may still use it at ``at``; else why not."""
        self._check_usable()
        session = self.sessions.get(session_id)
        if session is None:
            raise AuthenticationError("the session was ended; log in again",
                                      code="SESSION_REVOKED")
        if at >= session.expires_at:
            raise AuthenticationError("the session expired; log in again", code="TOKEN_EXPIRED")
        return session

    def _check_present(self) -> None:
        if self.erased:
            raise InvalidTransitionError("this user was forgotten", code="USER_ERASED")

    def _check_usable(self) -> None:
        if self.erased:
            raise AuthenticationError("this user was forgotten")
        if self.blocked:
            raise AuthenticationError("the account is blocked", code="ACCOUNT_BLOCKED")

    @staticmethod
    def _check_token(pending: PendingToken | None, digest: str, at: datetime,
                     kind: str) -> None:
        if pending is None or not digests_match(pending.digest, digest):
            raise DomainError("the token is not valid (or was replaced by a newer one)",
                              code=f"{kind}_INVALID")
        if at >= pending.expires_at:
            raise DomainError("the token expired; ask for a new one", code=f"{kind}_EXPIRED")
