"""Security adapters that need no database: tokens, bcrypt, mailers, the login limiter."""

from __future__ import annotations

import io
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.clock import SettableClock
from adapters.mailer import ConsoleMailer, SmtpMailer, mailer_from_environ
from adapters.security.passwords import BcryptPasswordHasher
from adapters.security.server_secret import derive_key
from adapters.security.tokens import HmacTokenSigner, RandomSecrets
from application.login_limits import FailedLoginLimiter, TooManyAttemptsError
from domain.credentials import NewPassword
from domain.errors import DomainError
from domain.ports import AccessClaims

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CLAIMS = AccessClaims(UUID(int=1), UUID(int=2), "admin", T0)


def test_an_access_token_carries_its_claims_and_only_its_signer_reads_it() -> None:
    signer = HmacTokenSigner(derive_key(b"secret-one", "access-tokens"))
    other = HmacTokenSigner(derive_key(b"secret-two", "access-tokens"))

    token = signer.sign(CLAIMS)

    assert signer.read(token) == CLAIMS
    assert other.read(token) is None
    assert token.startswith("at.") and token.count(".") == 2


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: t.replace("at.", "xx.", 1),
    lambda t: t + ".extra",
    lambda t: "",
    lambda t: "at.!!!.???",
])
def test_a_changed_or_malformed_access_token_reads_as_nothing(mangle) -> None:
    signer = HmacTokenSigner(derive_key(b"secret", "access-tokens"))

    assert signer.read(mangle(signer.sign(CLAIMS))) is None


def test_keys_derived_for_different_purposes_differ() -> None:
    assert derive_key(b"s", "access-tokens") != derive_key(b"s", "email-index")
    with pytest.raises(ValueError):
        HmacTokenSigner(b"short")


def test_random_secrets_are_long_and_distinct() -> None:
    secrets = RandomSecrets()
    drawn = {secrets.new_secret() for _ in range(100)}

    assert len(drawn) == 100 and all(len(s) >= 43 for s in drawn)


def test_bcrypt_hashes_salted_and_verifies_even_long_passphrases() -> None:
    hasher = BcryptPasswordHasher(rounds=4)
    long = "Aa1" + "x" * 100  # past bcrypt's own 72-byte limit

    first, second = hasher.hash(NewPassword(long)), hasher.hash(NewPassword(long))

    assert first != second and first.startswith("$2")
    assert hasher.verify(long, first) and hasher.verify(long, second)
    assert not hasher.verify(long[:-1] + "y", first)  # the 100th character still counts
    assert not hasher.verify(long, None) and not hasher.verify(long, "not a hash")
    with pytest.raises(TypeError):
        hasher.hash(long)  # type: ignore[arg-type]


def test_console_mailer_prints_the_mail() -> None:
    out = io.StringIO()

    ConsoleMailer(out).send("a@example.com", "Verify", "token: abc")

    assert "a@example.com" in out.getvalue() and "token: abc" in out.getvalue()


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: greet, EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        self.wfile.write(b"220 test\r\n")
        lines: list[str] | None = None
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if lines is not None:
                if line == ".":
                    self.server.received.append("\n".join(lines))  # type: ignore[attr-defined]
                    lines = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line)
                continue
            verb = line[:4].upper()
            reply = {"EHLO": b"250 test\r\n", "DATA": b"354 go on\r\n", "QUIT": b"221 bye\r\n"}
            self.wfile.write(reply.get(verb, b"250 ok\r\n"))
            if verb == "DATA":
                lines = []
            if verb == "QUIT":
                return


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_smtp_mailer_delivers_through_the_configured_server(smtp_server) -> None:
    port = smtp_server.server_address[1]
    mailer = mailer_from_environ({"TRADETAPE_SMTP_URL": f"smtp://127.0.0.1:{port}",
                                  "TRADETAPE_MAIL_FROM": "bot@tradetape.test"})

    mailer.send("a@example.com", "Verify your email", "use this token: abc")

    (message,) = smtp_server.received
    assert "To: a@example.com" in message and "From: bot@tradetape.test" in message
    assert "use this token: abc" in message


def test_smtp_mailer_reports_an_unreachable_server_with_a_code() -> None:
    mailer = SmtpMailer("smtp://127.0.0.1:1", timeout=2)

    with pytest.raises(DomainError, match="MAIL_NOT_SENT"):
        mailer.send("a@example.com", "s", "b")


def test_without_smtp_url_mail_goes_to_the_console() -> None:
    assert isinstance(mailer_from_environ({}), ConsoleMailer)
    with pytest.raises(DomainError, match="INVALID_SMTP_URL"):
        mailer_from_environ({"TRADETAPE_SMTP_URL": "http://mail.example.com"})


def test_the_limiter_counts_failures_in_a_sliding_window() -> None:
    clock = SettableClock(T0)
    limiter = FailedLoginLimiter(clock, per_account=2, per_ip=3,
                                 window=timedelta(minutes=10))
    limiter.record_failure("a@x.io", "1.1.1.1")
    clock.current += timedelta(minutes=5)
    limiter.record_failure("A@X.io ", "1.1.1.1")

    with pytest.raises(TooManyAttemptsError) as caught:
        limiter.check("a@x.io", "1.1.1.1")  # this address, on this account
    assert caught.value.retry_after_seconds == 300
    limiter.check("a@x.io", "2.2.2.2")  # the account itself is not locked
    clock.current += timedelta(minutes=5)
    limiter.check("a@x.io", "1.1.1.1")  # the first failure left the window
    limiter.record_failure("b@x.io", "1.1.1.1")
    limiter.check("c@x.io", "1.1.1.1")  # two in the window from this address, three allowed
    limiter.record_failure("c@x.io", "1.1.1.1")
    with pytest.raises(TooManyAttemptsError):
        limiter.check("d@x.io", "1.1.1.1")


def test_failures_from_many_addresses_slow_an_account_down_without_locking_it() -> None:
    clock = SettableClock(T0)
    limiter = FailedLoginLimiter(clock, per_account=3, window=timedelta(minutes=10),
                                 max_delay=5)
    delays = []
    for n in range(7):
        delays.append(limiter.delay("a@x.io"))
        limiter.check("a@x.io", f"10.0.0.{n}")  # never refused: each address failed once
        limiter.record_failure("a@x.io", f"10.0.0.{n}")

    assert delays == [0, 0, 0, 1, 2, 4, 5]
    limiter.record_success("a@x.io", "10.0.0.99")
    assert limiter.delay("a@x.io") == 0


def test_the_limiter_keeps_a_bounded_number_of_keys() -> None:
    limiter = FailedLoginLimiter(SettableClock(T0), max_keys=10)

    for n in range(100):
        limiter.record_failure(f"user{n}@x.io", None)

    assert len(limiter._failures) <= 10


def test_an_unknown_email_costs_a_full_bcrypt_check_at_the_default_rounds() -> None:
    """The decoy an unknown email is checked against (written once, not hashed at every
    start) is a real bcrypt hash at the rounds real passwords use: that answer takes as
    long as a wrong password's."""
    import bcrypt

    from adapters.security.passwords import _DEFAULT_DECOY, DEFAULT_ROUNDS

    assert bcrypt.checkpw(b"decoy", _DEFAULT_DECOY)
    assert _DEFAULT_DECOY.split(b"$")[2] == str(DEFAULT_ROUNDS).encode()
    real = BcryptPasswordHasher().hash(NewPassword("Correct horse battery staple 42"))
    assert real.split("$")[2] == _DEFAULT_DECOY.decode().split("$")[2]
    assert BcryptPasswordHasher().verify("anything", None) is False
