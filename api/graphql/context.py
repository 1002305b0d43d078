"""The typed context of every operation: the runtime, the read side, this request's
DataLoaders, and who is calling (authenticated on first use, from ``Authorization: Bearer
<access token>`` or, on a websocket, the ``connection_init`` payload)."""

from __future__ import annotations

import asyncio
from typing import Any

from anyio import to_thread
from strawberry.fastapi import BaseContext

from api.bearer import bearer_token
from api.graphql.loaders import Loaders
from api.graphql.permissions import authentication_error
from api.graphql.read_side import ReadSide
from api.logs import note_user
from application.runtime import Runtime
from application.user_views import Principal
from domain.users import AuthenticationError


class Context(BaseContext):
    def __init__(self, runtime: Runtime, read: ReadSide):
        super().__init__()
        self.runtime, self.read = runtime, read
        self.loaders = Loaders(runtime, read)
        self._principal: Principal | None = None
        self._authenticating: asyncio.Future | None = None

    # --- who is calling -------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        params = self.connection_params if isinstance(self.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        if header is None and isinstance(params.get("token"), str):
            return params["token"]
        if header is None and self.request is not None:
            header = self.request.headers.get("authorization")
        return bearer_token(header)

    @property
    def principal(self) -> Principal:
        """The caller, or an error with ``extensions.code`` saying why there is none."""
        if self._principal is None:
            try:
                self._principal = self.runtime.identity.authenticate(self.token)
            except AuthenticationError as error:
                raise authentication_error(error.code, error.message) from None
            note_user(str(self._principal.user_id))
        return self._principal

    async def authenticated(self) -> Principal:
        """``principal``, found on a worker thread the first time (it reads the user's
        events): the event loop does not wait for the database."""
        if self._principal is None:
            if self._authenticating is None:  # one check for every field that asks
                self._authenticating = asyncio.ensure_future(to_thread.run_sync(
                    self.runtime.identity.authenticate, self.token))
            try:
                found = await asyncio.shield(self._authenticating)
            except AuthenticationError as error:
                self._authenticating = None  # asked again, checked again
                raise authentication_error(error.code, error.message) from None
            except Exception:
                self._authenticating = None
                raise
            if self._principal is None:
                self._principal = found
                note_user(str(found.user_id))
        return self._principal

    def reauthenticate(self) -> Principal:
        """Check the token again (a long-lived websocket: blocked, logged out, expired)."""
        self._principal, self._authenticating = None, None
        return self.principal

    @property
    def user_id(self) -> str:
        return str(self.principal.user_id)

    def can_see(self, owner_id: Any) -> bool:
        """The caller owns it, or is an administrator."""
        principal = self.principal
        return principal.is_admin or (owner_id is not None
                                      and str(owner_id) == str(principal.user_id))

    def owner_scope(self) -> str | None:
        """What a list is limited to: the caller's own rows (None: all, for admins)."""
        return None if self.principal.is_admin else self.user_id

    @property
    def client_ip(self) -> str | None:
        client = getattr(self.request, "client", None)
        return client.host if client else None

    def fresh_loaders(self) -> Loaders:
        """New, empty caches (a subscription's context lives as long as its websocket)."""
        self.loaders = Loaders(self.runtime, self.read)
        return self.loaders
