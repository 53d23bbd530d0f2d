"""Use cases of API keys: create (secret shown once), list, revoke, and authenticate."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime

from identity import api_keys_store
from identity.domain import ApiKey, check_grantable_scopes, new_api_key, parse_api_key, secret_hash
from identity.errors import InvalidCredentialsError, InvalidFieldError, NotFoundError
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import PoolSource
from switchboard_runtime.pagination import page_size, time_key_after, time_keyed_page
from switchboard_runtime.principal import Principal, PrincipalKind


class ApiKeys:
    def __init__(self, db: PoolSource, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(
        self, principal: Principal, *, name: str, scopes: list[str], expires_at: datetime | None
    ) -> tuple[ApiKey, str]:
        """A new key and its full secret form, which is never available again."""
        check_grantable_scopes(scopes, holder_scopes=principal.scopes)
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidFieldError("expire_time", "must be in the future")
        lookup_id, secret, full_key = new_api_key()
        key = ApiKey(
            api_key_id=str(uuid.uuid4()),
            tenant_id=principal.tenant_id,
            name=name,
            lookup_id=lookup_id,
            scopes=tuple(sorted(set(scopes))),
            created_by_user_id=principal.subject,
            created_at=now,
            expires_at=expires_at,
            last_used_at=None,
            revoked_at=None,
        )
        async with self._db.pool.acquire() as conn:
            await api_keys_store.insert(conn, key, secret_hash(secret))
        return key, full_key

    async def list(
        self, principal: Principal, *, size: int, token: str, include_revoked: bool
    ) -> tuple[list[ApiKey], str]:
        scope = f"api_keys:{principal.tenant_id}:{int(include_revoked)}"
        after = time_key_after(token, scope)
        limit = page_size(size)
        async with self._db.pool.acquire() as conn:
            keys = await api_keys_store.list_keys(
                conn,
                principal.tenant_id,
                after=after,
                limit=limit + 1,
                include_revoked=include_revoked,
                now=self._clock.now(),
            )
        return time_keyed_page(keys, limit, scope, lambda item: (item.created_at, item.api_key_id))

    async def revoke(self, principal: Principal, api_key_id: str) -> ApiKey:
        async with self._db.pool.acquire() as conn:
            key = await api_keys_store.revoke(
                conn, principal.tenant_id, api_key_id, self._clock.now()
            )
        if key is None:
            raise NotFoundError("API key not found")
        return key

    async def authenticate(self, full_key: str) -> Principal:
        """The principal of a valid, unrevoked, unexpired key."""
        parsed = parse_api_key(full_key)
        if parsed is None:
            raise InvalidCredentialsError("malformed API key")
        lookup_id, secret = parsed
        now = self._clock.now()
        async with self._db.pool.acquire() as conn:
            found = await api_keys_store.by_lookup_id(conn, lookup_id)
            if found is None:
                raise InvalidCredentialsError("unknown API key")
            key, stored_hash = found
            if not hmac.compare_digest(stored_hash, secret_hash(secret)):
                raise InvalidCredentialsError("wrong API key secret")
            if not key.usable_at(now):
                raise InvalidCredentialsError("API key revoked or expired")
            await api_keys_store.touch(conn, key.api_key_id, now)
        return Principal(
            kind=PrincipalKind.API_KEY,
            tenant_id=key.tenant_id,
            subject=key.api_key_id,
            scopes=frozenset(key.scopes),
        )
