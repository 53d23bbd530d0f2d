"""Use case: a Switchboard service proves itself with its client secret and gets a token."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from identity import accounts_store
from identity.domain import SERVICE_SCOPES
from identity.errors import InvalidFieldError, NotFoundError, ServiceAuthenticationError
from identity.key_ring import KeyRing
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import PoolSource
from switchboard_runtime.principal import Principal, PrincipalKind


class ServiceTokens:
    def __init__(
        self,
        db: PoolSource,
        *,
        keys: KeyRing,
        clock: Clock,
        client_secrets: dict[str, str],
        ttl: timedelta,
    ) -> None:
        self._db = db
        self._keys = keys
        self._clock = clock
        self._client_secrets = client_secrets
        self._ttl = ttl

    async def issue(
        self, *, service_name: str, client_secret: str, tenant_id: str, scopes: list[str]
    ) -> tuple[str, datetime]:
        expected = self._client_secrets.get(service_name)
        # Compare even for unknown names, so timing does not tell which names exist.
        matches = hmac.compare_digest((expected or "\0").encode(), client_secret.encode())
        if expected is None or not matches:
            raise ServiceAuthenticationError("unknown service or wrong client secret")
        for index, scope in enumerate(scopes):
            if scope not in SERVICE_SCOPES:
                raise InvalidFieldError(f"scopes[{index}]", f"unknown scope {scope!r}")
        if tenant_id:
            async with self._db.pool.acquire() as conn:
                if await accounts_store.tenant_by_id(conn, tenant_id) is None:
                    raise NotFoundError("tenant not found")
        principal = Principal(
            kind=PrincipalKind.SERVICE,
            tenant_id=tenant_id,
            subject=service_name,
            scopes=frozenset(scopes),
        )
        signer = await self._keys.signer()
        return signer.sign(principal, now=self._clock.now(), ttl=self._ttl)
