"""A service's connection to identity: it verifies callers and gets the service's own tokens.

Every service but identity attaches one, and passes it to `AuthInterceptor` as the
authenticator::

    identity = IdentityClient.from_settings(settings)
    app = ServiceApp(name=..., settings=settings, extra_interceptors=[AuthInterceptor(identity)])
    attach(app, identity)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import grpc

from switchboard.identity.v1 import identity_pb2_grpc
from switchboard_runtime.access_tokens import TokenAudience
from switchboard_runtime.channels import create_channel
from switchboard_runtime.datastores import NotOpenError
from switchboard_runtime.principal import Principal
from switchboard_runtime.remote_auth import RemoteAuthenticator, ServiceTokenSource
from switchboard_runtime.settings import REQUIRED, ServiceSettings


@dataclass(frozen=True)
class IdentityClientSettings(ServiceSettings):
    """Settings of a service that verifies callers through identity."""

    service_name: ClassVar[str] = "service"

    identity_addr: str = "127.0.0.1:50052"
    #: This service's name towards identity (defaults to the service's own name).
    service_client_id: str = ""
    service_client_secret: str = field(default=REQUIRED, metadata={"secret": True})
    token_issuer: str = "switchboard-identity"
    token_audience: str = "switchboard"

    @property
    def client_id(self) -> str:
        return self.service_client_id or type(self).service_name


class IdentityClient:
    """Authenticator for `AuthInterceptor` and source of this service's tokens."""

    def __init__(
        self, address: str, *, client_id: str, client_secret: str, audience: TokenAudience
    ) -> None:
        self._address = address
        self._client_id = client_id
        self._client_secret = client_secret
        self._audience = audience
        self._channel: grpc.aio.Channel | None = None
        self._stub: identity_pb2_grpc.IdentityServiceAsyncStub | None = None
        self._tokens: ServiceTokenSource | None = None
        self._authenticator: RemoteAuthenticator | None = None

    @classmethod
    def from_settings(cls, settings: IdentityClientSettings) -> IdentityClient:
        return cls(
            settings.identity_addr,
            client_id=settings.client_id,
            client_secret=settings.service_client_secret,
            audience=TokenAudience(issuer=settings.token_issuer, audience=settings.token_audience),
        )

    async def open(self) -> None:
        # The channel is made here, inside the running loop it will serve.
        self._channel = create_channel(self._address)
        stub: identity_pb2_grpc.IdentityServiceAsyncStub = identity_pb2_grpc.IdentityServiceStub(
            self._channel
        )
        self._stub = stub
        self._tokens = ServiceTokenSource(
            stub, service_name=self._client_id, client_secret=self._client_secret
        )
        self._authenticator = RemoteAuthenticator(stub, self._tokens, audience=self._audience)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    @property
    def stub(self) -> identity_pb2_grpc.IdentityServiceAsyncStub:
        if self._stub is None:
            raise NotOpenError("the identity client is not open")
        return self._stub

    async def authenticate(self, credential: str) -> Principal:
        if self._authenticator is None:
            raise NotOpenError("the identity client is not open")
        return await self._authenticator.authenticate(credential)

    async def service_token(self, *, tenant_id: str = "", scopes: Sequence[str]) -> str:
        """A token of this service acting for `tenant_id` (no user waiting)."""
        if self._tokens is None:
            raise NotOpenError("the identity client is not open")
        return await self._tokens.token(tenant_id=tenant_id, scopes=scopes)
