"""The operator's Ed25519 key, which signs audit checkpoints (``tradetape audit keygen``,
``audit checkpoint --sign KEYFILE``). The private key is a PKCS#8 PEM file readable by its
owner only; the public key travels as 64 hex digits, to be published where auditors can
compare it."""

from __future__ import annotations

import os
from pathlib import Path

from domain.errors import DomainError


class SigningKeyError(DomainError):
    code = "SIGNING_KEY_INVALID"


def generate_signing_key(path: str | Path) -> str:
    """A new private key written to ``path`` (0600, never over an existing file); returns
    its public key as hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} already exists: a key is never overwritten",
                              code="KEY_FILE_EXISTS") from None
    except OSError as error:
        raise SigningKeyError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    return _public_hex(key)


def sign_message(path: str | Path, message: bytes) -> str:
    """The signature (hex) of ``message`` by the private key in ``path``."""
    return _private_key(path).sign(message).hex()


def public_key_of(path: str | Path) -> str:
    """The public key (hex) of the private key in ``path``."""
    return _public_hex(_private_key(path))


def _private_key(path: str | Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    # The key is named by its file's name, never the path to it: these messages reach
    # the server's log (a scheduled checkpoint that failed), which must not say where a
    # private key lives.
    name = Path(path).name
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise SigningKeyError(f"cannot read an Ed25519 private key from the key file "
                              f"{name!r}: {getattr(error, 'strerror', None) or error}"
                              ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the key file {name!r} holds no Ed25519 private key")
    return key


def signature_holds(public_key: str, signature: str, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _public_hex(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw).hex()
