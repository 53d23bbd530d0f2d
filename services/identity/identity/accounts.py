"""Use cases of tenants and users: sign-up, creating users, roles, deactivation, reads."""

from __future__ import annotations

import uuid

from identity import accounts_store, events, sessions_store
from identity.domain import Tenant, TokenPair, User, check_role_change
from identity.errors import ForbiddenError, LastOwnerError, NotFoundError
from identity.passwords import PasswordHasher
from identity.sessions import Sessions
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import PoolSource
from switchboard_runtime.pagination import page_size, time_key_after, time_keyed_page
from switchboard_runtime.principal import Principal, PrincipalKind, Role


def _actor_role(principal: Principal) -> Role:
    # API keys act with admin rights at most (their scopes already bound what they may do).
    return principal.role if principal.role is not None else Role.ADMIN


def _actor_id(principal: Principal) -> str:
    return principal.subject if principal.kind is PrincipalKind.USER else ""


class Accounts:
    def __init__(
        self, db: PoolSource, *, hasher: PasswordHasher, sessions: Sessions, clock: Clock
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._sessions = sessions
        self._clock = clock

    def _new_user(self, tenant_id: str, email: str, display_name: str, role: Role) -> User:
        now = self._clock.now()
        return User(
            user_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            email=email,
            display_name=display_name,
            role=role,
            active=True,
            created_at=now,
            updated_at=now,
        )

    async def sign_up(
        self, *, tenant_name: str, tenant_slug: str, email: str, password: str, display_name: str
    ) -> tuple[Tenant, User, TokenPair]:
        """Create a tenant and its owner, and sign the owner in."""
        password_hash = await self._hasher.hash(password)
        tenant = Tenant(str(uuid.uuid4()), tenant_name, tenant_slug, self._clock.now())
        owner = self._new_user(tenant.tenant_id, email, display_name, Role.OWNER)
        async with self._db.pool.acquire() as conn, conn.transaction():
            await accounts_store.insert_tenant(conn, tenant)
            await accounts_store.insert_user(conn, owner, password_hash)
            await events.user_created(conn, owner, owner.created_at)
            tokens = await self._sessions.start(conn, owner)
        return tenant, owner, tokens

    async def create_user(
        self, principal: Principal, *, email: str, password: str, display_name: str, role: Role
    ) -> User:
        check_role_change(actor=_actor_role(principal), current=Role.MEMBER, new=role)
        password_hash = await self._hasher.hash(password)
        user = self._new_user(principal.tenant_id, email, display_name, role)
        async with self._db.pool.acquire() as conn, conn.transaction():
            await accounts_store.insert_user(conn, user, password_hash)
            await events.user_created(conn, user, user.created_at)
        return user

    async def tenant(self, principal: Principal) -> Tenant:
        async with self._db.pool.acquire() as conn:
            tenant = await accounts_store.tenant_by_id(conn, principal.tenant_id)
        if tenant is None:
            raise NotFoundError("tenant not found")
        return tenant

    async def get_user(self, principal: Principal, user_id: str) -> User:
        async with self._db.pool.acquire() as conn:
            user = await accounts_store.user_by_id(conn, principal.tenant_id, user_id)
        if user is None:
            raise NotFoundError("user not found")
        return user

    async def list_users(
        self, principal: Principal, *, size: int, token: str, include_inactive: bool
    ) -> tuple[list[User], str]:
        scope = f"users:{principal.tenant_id}:{int(include_inactive)}"
        after = time_key_after(token, scope)
        limit = page_size(size)
        async with self._db.pool.acquire() as conn:
            users = await accounts_store.list_users(
                conn,
                principal.tenant_id,
                after=after,
                limit=limit + 1,
                include_inactive=include_inactive,
            )
        return time_keyed_page(users, limit, scope, lambda item: (item.created_at, item.user_id))

    async def set_user_role(self, principal: Principal, user_id: str, role: Role) -> User:
        now = self._clock.now()
        async with self._db.pool.acquire() as conn, conn.transaction():
            owners = await accounts_store.lock_active_owners(conn, principal.tenant_id)
            user = await accounts_store.user_by_id(
                conn, principal.tenant_id, user_id, for_update=True
            )
            if user is None:
                raise NotFoundError("user not found")
            check_role_change(actor=_actor_role(principal), current=user.role, new=role)
            if role == user.role:
                return user
            if owners == [user.user_id] and role is not Role.OWNER:
                raise LastOwnerError()
            updated = await accounts_store.set_role(conn, user, role, now)
            await events.user_role_changed(conn, updated, user.role, _actor_id(principal), now)
        return updated

    async def deactivate_user(self, principal: Principal, user_id: str) -> User:
        now = self._clock.now()
        async with self._db.pool.acquire() as conn, conn.transaction():
            owners = await accounts_store.lock_active_owners(conn, principal.tenant_id)
            user = await accounts_store.user_by_id(
                conn, principal.tenant_id, user_id, for_update=True
            )
            if user is None:
                raise NotFoundError("user not found")
            if not user.active:
                return user
            if user.role is Role.OWNER and _actor_role(principal) is not Role.OWNER:
                raise ForbiddenError("only an owner can deactivate an owner")
            if owners == [user.user_id]:
                raise LastOwnerError()
            updated = await accounts_store.deactivate(conn, user, now)
            await sessions_store.revoke_user_sessions(conn, user.user_id, now, "deactivated")
            await events.user_deactivated(conn, updated, _actor_id(principal), now)
        return updated
