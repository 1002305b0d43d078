"""The composition root's identity: users, their data keys and email index, the server
secret and master key, exchange accounts checked through ccxt, and the master key's
rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.bootstrap_stores import open_trading
from application.settings import parse_database_url, prepare

if TYPE_CHECKING:
    from application.trading import Trading
    from domain.ports import Clock, IdSource


def open_identity(
    url: str | None = None,
    *,
    trading: Trading | None = None,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    secrets=None,
    mailer=None,
    hasher=None,
    secret_key: str | None = None,
    starting_balance=None,
    bcrypt_rounds: int | None = None,
):
    """An :class:`~application.identity.Identity` on the store named by ``url`` (as
    :func:`open_trading`), its data keys and email index in tables of that same database.

    ``trading``: an open Trading on that store to share (the caller closes it); otherwise
    one is opened and ``Identity.close()`` closes it. Unless given: the server secret and the
    master key from ``TRADETAPE_SECRET_KEY`` / ``TRADETAPE_MASTER_KEY``, else from key files
    made on first use outside the database (``adapters/security/key_files.py``), mail through
    ``TRADETAPE_SMTP_URL`` (else the console), bcrypt cost ``TRADETAPE_BCRYPT_ROUNDS``
    (else 12), settings from ``TRADETAPE_*`` (see ``application.identity_settings``)."""
    import os

    from adapters.mailer import mailer_from_environ
    from adapters.security.email_index import HmacEmailIndex
    from adapters.security.key_files import SECRET_KEY_ENV, key_locations
    from adapters.security.keys import AesGcmDataKeyStore
    from adapters.security.master_keys import load_master_keys, wrap_legacy_keys
    from adapters.security.passwords import DEFAULT_ROUNDS, BcryptPasswordHasher
    from adapters.security.server_secret import derive_key, load_server_secret, secret_changed
    from adapters.security.tables import open_tables
    from adapters.security.tokens import HmacTokenSigner, RandomSecrets
    from application.identity import Identity
    from application.identity_settings import IdentitySettings

    database = parse_database_url(url)
    prepare(database)
    settings = IdentitySettings.from_environ(starting_balance=starting_balance)
    rounds = bcrypt_rounds or int(os.environ.get("TRADETAPE_BCRYPT_ROUNDS") or DEFAULT_ROUNDS)
    owned = trading is None
    app = trading or open_trading(url, clock=clock, ids=ids)
    tables = open_tables(database)
    try:
        environ = {**os.environ, **({SECRET_KEY_ENV: secret_key} if secret_key else {})}
        locations = key_locations(database, environ)
        master = load_master_keys(tables, locations)
        wrap_legacy_keys(tables, master)  # the first start after an upgrade
        secret = load_server_secret(tables, environ, locations.secret)
        hasher = hasher or BcryptPasswordHasher(rounds)
    except BaseException:
        tables.close()
        if owned:
            app.close()
        raise

    def close() -> None:
        tables.close()
        if owned:
            app.close()

    identity = Identity(
        app, hasher=hasher, keys=AesGcmDataKeyStore(tables, master),
        emails=HmacEmailIndex(tables, derive_key(secret, "email-index")),
        signer=HmacTokenSigner(derive_key(secret, "access-tokens")),
        secrets=secrets or RandomSecrets(), mailer=mailer or mailer_from_environ(),
        settings=settings, on_close=close,
    )
    if secret_changed(tables, secret):  # rotated: the email index was keyed by the old one
        identity.rebuild_email_index()
    return identity


def open_exchange_accounts(identity, *, connector=None, allow_live: bool = False,
                           environ=None):
    """:class:`~application.exchange_accounts.ExchangeAccounts` over ``identity``'s log and
    data keys; keys checked through ccxt (``TRADETAPE_SANDBOX_HOST`` from ``environ``,
    else the process environment, rewrites sandbox URLs) unless ``connector`` is given."""
    import os

    from application.exchange_accounts import ExchangeAccounts

    if connector is None:
        from adapters.exchanges.ccxt_client import sandbox_host_from
        from adapters.exchanges.ccxt_connector import CcxtExchangeConnector

        env = os.environ if environ is None else environ
        connector = CcxtExchangeConnector(sandbox_host=sandbox_host_from(dict(env)))
    return ExchangeAccounts(identity.trading, identity.data_keys, connector,
                            allow_live=allow_live, quote_asset=identity.settings.quote_asset)


def rotate_master_key(url: str | None = None):
    """Re-wrap every data key of the store ``url`` names under a new master key (see
    ``adapters/security/master_keys.py``); what was done, and where the new key is."""
    from adapters.security.key_files import key_locations
    from adapters.security.master_keys import rotate
    from adapters.security.tables import open_tables

    database = parse_database_url(url)
    prepare(database)
    tables = open_tables(database)
    try:
        return rotate(tables, key_locations(database))
    finally:
        tables.close()
