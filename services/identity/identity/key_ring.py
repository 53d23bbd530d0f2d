"""The signing keys in use: the active one signs, all published ones verify, rotation swaps.

A new key is published in the JWKS `activation_delay` before it signs anything, so every
verifier that refreshes its JWKS in that time already knows it when the first token signed
with it arrives; the previous key stays published until its last token has expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity import signing_keys_store
from identity.signing_keys import KeyCipher, TokenSigner
from switchboard_runtime.access_tokens import Jwk, TokenAudience
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import DbConnection, PoolSource

_ROTATION_LOCK_ID = 0x5357_4B45_5953  # "SWKEYS": one rotation at a time across replicas


class KeyRing:
    def __init__(
        self,
        db: PoolSource,
        cipher: KeyCipher,
        *,
        audience: TokenAudience,
        clock: Clock,
        max_token_ttl: timedelta,
        activation_delay: timedelta,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._audience = audience
        self._clock = clock
        self._max_token_ttl = max_token_ttl
        self._activation_delay = activation_delay
        self._private_keys: dict[str, Ed25519PrivateKey] = {}

    async def ensure_active_key(self) -> None:
        """Create a first key, active at once, if there is none (several replicas may race)."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ROTATION_LOCK_ID)
            if await signing_keys_store.active_key(conn, self._clock.now()) is None:
                await self._add_key(conn, delay=timedelta(0))

    async def rotate(self) -> str:
        """Publish a new key that starts signing after the activation delay; return its kid."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ROTATION_LOCK_ID)
            return await self._add_key(conn, delay=self._activation_delay)

    async def _add_key(self, conn: DbConnection, *, delay: timedelta) -> str:
        activated_at = self._clock.now() + delay
        key = self._cipher.new_key(activated_at=activated_at)
        # The last token an older key signs, just before activated_at, expires TTL later.
        retire_at = activated_at + self._max_token_ttl + timedelta(minutes=5)
        await signing_keys_store.add(conn, key, retire_others_at=retire_at)
        return key.kid

    async def signer(self) -> TokenSigner:
        """A signer for the key active now."""
        async with self._db.pool.acquire() as conn:
            key = await signing_keys_store.active_key(conn, self._clock.now())
        if key is None:
            raise RuntimeError("no active signing key")
        private_key = self._private_keys.get(key.kid)
        if private_key is None:
            private_key = self._private_keys[key.kid] = self._cipher.private_key(key)
        return TokenSigner(key, private_key, self._audience)

    async def jwks(self) -> Sequence[Jwk]:
        """Public keys of every key that may verify a live token, newest first."""
        async with self._db.pool.acquire() as conn:
            keys = await signing_keys_store.published_keys(conn, self._clock.now())
        return [key.public_jwk() for key in keys]
