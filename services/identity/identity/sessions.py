"""Use cases of sign-in sessions: login, refresh with rotation and reuse detection, logout."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from identity import accounts_store, sessions_store
from identity.domain import (
    ThrottlePolicy,
    TokenPair,
    User,
    after_failure,
    new_refresh_token,
    secret_hash,
    user_scopes,
    wait_before_attempt,
)
from identity.errors import InvalidCredentialsError, LoginThrottledError
from identity.key_ring import KeyRing
from identity.passwords import PasswordHasher
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import DbConnection, PoolSource
from switchboard_runtime.principal import Principal, PrincipalKind

logger = logging.getLogger("identity.sessions")


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    access_token_ttl: timedelta
    refresh_token_ttl: timedelta
    session_max_age: timedelta
    throttle: ThrottlePolicy


class Sessions:
    def __init__(
        self,
        db: PoolSource,
        *,
        keys: KeyRing,
        hasher: PasswordHasher,
        clock: Clock,
        policy: SessionPolicy,
    ) -> None:
        self._db = db
        self._keys = keys
        self._hasher = hasher
        self._clock = clock
        self._policy = policy

    async def start(self, conn: DbConnection, user: User) -> TokenPair:
        """Open a session for `user` inside the caller's transaction; return its first tokens."""
        now = self._clock.now()
        session_id = str(uuid.uuid4())
        await sessions_store.create_session(
            conn,
            session_id=session_id,
            tenant_id=user.tenant_id,
            user_id=user.user_id,
            now=now,
            expires_at=now + self._policy.session_max_age,
        )
        return await self._issue(conn, user, session_id)

    async def _issue(self, conn: DbConnection, user: User, session_id: str) -> TokenPair:
        now = self._clock.now()
        refresh_token = new_refresh_token()
        refresh_expires_at = now + self._policy.refresh_token_ttl
        await sessions_store.add_refresh_token(
            conn,
            token_hash=secret_hash(refresh_token),
            session_id=session_id,
            now=now,
            expires_at=refresh_expires_at,
        )
        principal = Principal(
            kind=PrincipalKind.USER,
            tenant_id=user.tenant_id,
            subject=user.user_id,
            role=user.role,
            scopes=user_scopes(user.role),
        )
        signer = await self._keys.signer()
        access_token, access_expires_at = signer.sign(
            principal, now=now, ttl=self._policy.access_token_ttl, session_id=session_id
        )
        return TokenPair(access_token, access_expires_at, refresh_token, refresh_expires_at)

    async def login(self, tenant_slug: str, email: str, password: str) -> tuple[User, TokenPair]:
        # Failures must be committed even though the call fails, so the transaction decides
        # an outcome and the error is raised only after it has committed.
        failure: Exception | None = None
        async with self._db.pool.acquire() as conn, conn.transaction():
            # One attempt per (tenant, email) at a time, so failures are counted exactly.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"login:{tenant_slug}:{email.lower()}",
            )
            throttle = await accounts_store.throttle_of(conn, tenant_slug, email)
            now = self._clock.now()
            if wait_before_attempt(throttle, now) > 0:
                # Attempts while blocked count too, so hammering locks the account sooner.
                refused = after_failure(throttle, now, self._policy.throttle)
                await accounts_store.save_throttle(conn, tenant_slug, email, refused)
                failure = LoginThrottledError(wait_before_attempt(refused, now))
            else:
                user = await self._verified_user(conn, tenant_slug, email, password)
                if user is None:
                    failed = after_failure(throttle, now, self._policy.throttle)
                    await accounts_store.save_throttle(conn, tenant_slug, email, failed)
                    failure = InvalidCredentialsError("invalid email or password")
                else:
                    await accounts_store.clear_throttle(conn, tenant_slug, email)
                    tokens = await self.start(conn, user)
        if failure is not None:
            raise failure
        assert user is not None
        return user, tokens

    async def _verified_user(
        self, conn: DbConnection, tenant_slug: str, email: str, password: str
    ) -> User | None:
        """The active user these credentials identify, rehashing an outdated hash; else None."""
        found = await accounts_store.user_for_login(conn, tenant_slug, email)
        if found is None:
            await self._hasher.spend_equivalent_time(password)
            return None
        user, password_hash = found
        if not await self._hasher.verify(password_hash, password) or not user.active:
            return None
        if self._hasher.needs_rehash(password_hash):
            await accounts_store.set_password_hash(
                conn, user.user_id, await self._hasher.hash(password)
            )
        return user

    async def refresh(self, refresh_token: str) -> TokenPair:
        token_hash = secret_hash(refresh_token)
        now = self._clock.now()
        failure: InvalidCredentialsError | None = None
        async with self._db.pool.acquire() as conn, conn.transaction():
            presented = await sessions_store.refresh_token_for_update(conn, token_hash)
            if presented is None:
                failure = InvalidCredentialsError("unknown refresh token")
            elif presented.used_at is not None:
                # Someone holds a copy of a spent token: end the whole family (OAuth 2.0
                # Security BCP), for the thief and the rightful holder alike.
                await sessions_store.revoke_session(conn, presented.session_id, now, "reuse")
                logger.warning(
                    "refresh token reused; session revoked",
                    extra={"session_id": presented.session_id, "tenant_id": presented.tenant_id},
                )
                failure = InvalidCredentialsError("refresh token reused")
            elif (
                presented.session_revoked
                or presented.expires_at <= now
                or presented.session_expires_at <= now
            ):
                failure = InvalidCredentialsError("refresh token expired or revoked")
            else:
                user = await accounts_store.user_by_id(conn, presented.tenant_id, presented.user_id)
                if user is None or not user.active:
                    failure = InvalidCredentialsError("user deactivated")
                else:
                    await sessions_store.mark_used(conn, token_hash, now)
                    tokens = await self._issue(conn, user, presented.session_id)
        if failure is not None:
            raise failure
        return tokens

    async def logout(self, principal: Principal, refresh_token: str) -> None:
        """Revoke the session of `refresh_token` if it is the caller's (idempotent)."""
        now = self._clock.now()
        async with self._db.pool.acquire() as conn, conn.transaction():
            presented = await sessions_store.refresh_token_for_update(
                conn, secret_hash(refresh_token)
            )
            if (
                presented is not None
                and presented.tenant_id == principal.tenant_id
                and presented.user_id == principal.subject
            ):
                await sessions_store.revoke_session(conn, presented.session_id, now, "logout")
