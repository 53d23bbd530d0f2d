"""How services other than identity verify callers and get credentials of their own.

- `ServiceTokenSource`: the service proves itself to identity with its client secret and
  gets short-lived tokens (per tenant, or platform-wide), renewed before they expire.
- `RemoteAuthenticator`: access tokens are verified offline against identity's JWKS; API
  keys are resolved through identity's Authenticate and cached for the few seconds identity
  allows, so a revoked key stops working everywhere within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Final

import grpc

from switchboard.identity.v1 import identity_pb2, identity_pb2_grpc
from switchboard_runtime.access_tokens import InvalidTokenError, Jwk, TokenAudience, TokenVerifier
from switchboard_runtime.auth_interceptor import (
    AuthenticationUnavailableError,
    InvalidCredentialError,
)
from switchboard_runtime.principal import Principal, PrincipalKind, Role

API_KEY_PREFIX: Final = "sbk_"
#: A token is renewed once this share of its lifetime has passed.
_RENEW_AT: Final = 0.8
_KINDS: Final = {
    identity_pb2.PRINCIPAL_KIND_USER: PrincipalKind.USER,
    identity_pb2.PRINCIPAL_KIND_API_KEY: PrincipalKind.API_KEY,
    identity_pb2.PRINCIPAL_KIND_SERVICE: PrincipalKind.SERVICE,
}
_UNAVAILABLE: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def principal_from_pb(principal: identity_pb2.Principal) -> Principal:
    return Principal(
        kind=_KINDS[principal.kind],
        tenant_id=principal.tenant_id,
        subject=principal.subject,
        role=Role(principal.role) if principal.role else None,
        scopes=frozenset(principal.scopes),
    )


class ServiceTokenSource:
    """Access tokens for this service, from identity's IssueServiceToken, cached."""

    def __init__(
        self,
        identity: identity_pb2_grpc.IdentityServiceAsyncStub,
        *,
        service_name: str,
        client_secret: str,
    ) -> None:
        self._identity = identity
        self._service_name = service_name
        self._client_secret = client_secret
        self._tokens: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    async def token(self, *, tenant_id: str = "", scopes: Sequence[str]) -> str:
        """A valid token acting for `tenant_id` (empty: platform-wide) with `scopes`."""
        key = (tenant_id, tuple(sorted(scopes)))
        cached = self._tokens.get(key)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        async with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and time.monotonic() < cached[1]:
                return cached[0]
            requested = time.monotonic()
            response = await self._identity.IssueServiceToken(
                identity_pb2.IssueServiceTokenRequest(
                    service_name=self._service_name,
                    client_secret=self._client_secret,
                    tenant_id=tenant_id,
                    scopes=list(key[1]),
                ),
                timeout=10,
            )
            lifetime = response.expire_time.ToDatetime(tzinfo=UTC).timestamp() - time.time()
            self._tokens[key] = (response.access_token, requested + max(lifetime, 0) * _RENEW_AT)
            token: str = response.access_token
            return token


class RemoteAuthenticator:
    """Verifies bearer credentials for a service that is not identity."""

    def __init__(
        self,
        identity: identity_pb2_grpc.IdentityServiceAsyncStub,
        tokens: ServiceTokenSource,
        *,
        audience: TokenAudience,
        cache_size: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identity = identity
        self._monotonic = monotonic
        self._tokens = tokens
        self.verifier = TokenVerifier(self._fetch_jwks, audience=audience)
        self._api_keys: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size

    async def _fetch_jwks(self) -> Sequence[Jwk]:
        try:
            response = await self._identity.GetJwks(identity_pb2.GetJwksRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            raise AuthenticationUnavailableError("cannot fetch the JWKS") from error
        return [
            {"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "use": k.use, "alg": k.alg}
            for k in response.keys
        ]

    async def authenticate(self, credential: str) -> Principal:
        if credential.startswith(API_KEY_PREFIX):
            return await self._api_key(credential)
        try:
            return await self.verifier.verify(credential)
        except InvalidTokenError as error:
            raise InvalidCredentialError(error.reason) from error

    async def _api_key(self, key: str) -> Principal:
        cached = self._api_keys.get(key)
        if cached is not None and self._monotonic() < cached[1]:
            return cached[0]
        token = await self._platform_token()
        try:
            response = await self._identity.Authenticate(
                identity_pb2.AuthenticateRequest(api_key=key),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=5,
            )
        except grpc.aio.AioRpcError as error:
            self._api_keys.pop(key, None)
            if error.code() in _UNAVAILABLE:
                raise AuthenticationUnavailableError("identity unreachable") from error
            raise InvalidCredentialError("API key rejected by identity") from error
        principal = principal_from_pb(response.principal)
        self._api_keys[key] = (principal, self._monotonic() + response.cache_ttl_seconds)
        self._api_keys.move_to_end(key)
        while len(self._api_keys) > self._cache_size:
            self._api_keys.popitem(last=False)
        return principal

    async def _platform_token(self) -> str:
        try:
            return await self._tokens.token(scopes=["identity:authenticate"])
        except grpc.aio.AioRpcError as error:
            raise AuthenticationUnavailableError("cannot get a service token") from error
