"""Postgres store of tenants, users and the sign-in throttle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from identity.domain import Tenant, ThrottleState, User
from identity.errors import AlreadyExistsError
from switchboard_runtime.datastores import DbConnection
from switchboard_runtime.principal import Role

_USER_COLUMNS = "user_id, tenant_id, email, display_name, role, active, created_at, updated_at"


def _tenant(row: asyncpg.Record) -> Tenant:
    return Tenant(
        tenant_id=str(row["tenant_id"]),
        name=row["name"],
        slug=row["slug"],
        created_at=row["created_at"],
    )


def _user(row: asyncpg.Record) -> User:
    return User(
        user_id=str(row["user_id"]),
        tenant_id=str(row["tenant_id"]),
        email=row["email"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        active=row["active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_tenant(conn: DbConnection, tenant: Tenant) -> None:
    try:
        await conn.execute(
            "INSERT INTO tenants (tenant_id, name, slug, created_at) VALUES ($1, $2, $3, $4)",
            tenant.tenant_id,
            tenant.name,
            tenant.slug,
            tenant.created_at,
        )
    except asyncpg.UniqueViolationError as error:
        raise AlreadyExistsError(f"the tenant slug {tenant.slug!r} is taken") from error


async def tenant_by_id(conn: DbConnection, tenant_id: str) -> Tenant | None:
    row = await conn.fetchrow("SELECT * FROM tenants WHERE tenant_id = $1", tenant_id)
    return None if row is None else _tenant(row)


async def insert_user(conn: DbConnection, user: User, password_hash: str) -> None:
    try:
        await conn.execute(
            "INSERT INTO users (user_id, tenant_id, email, display_name, role, password_hash,"
            " active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            user.user_id,
            user.tenant_id,
            user.email,
            user.display_name,
            int(user.role),
            password_hash,
            user.active,
            user.created_at,
            user.updated_at,
        )
    except asyncpg.UniqueViolationError as error:
        raise AlreadyExistsError("a user with this email already exists") from error


async def user_by_id(
    conn: DbConnection, tenant_id: str, user_id: str, *, for_update: bool = False
) -> User | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2{lock}",
        tenant_id,
        user_id,
    )
    return None if row is None else _user(row)


async def user_for_login(
    conn: DbConnection, tenant_slug: str, email: str
) -> tuple[User, str] | None:
    """The user signing in with this tenant slug and email, with their password hash."""
    row = await conn.fetchrow(
        f"SELECT {', '.join('u.' + c for c in _USER_COLUMNS.split(', '))}, u.password_hash"
        " FROM users u JOIN tenants t USING (tenant_id)"
        " WHERE t.slug = $1 AND lower(u.email) = lower($2)",
        tenant_slug,
        email,
    )
    return None if row is None else (_user(row), row["password_hash"])


async def list_users(
    conn: DbConnection,
    tenant_id: str,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
    include_inactive: bool,
) -> list[User]:
    conditions = ["tenant_id = $1"]
    args: list[Any] = [tenant_id]
    if not include_inactive:
        conditions.append("active")
    if after is not None:
        args.extend(after)
        conditions.append(f"(created_at, user_id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_USER_COLUMNS} FROM users WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, user_id LIMIT ${len(args)}",
        *args,
    )
    return [_user(row) for row in rows]


async def lock_active_owners(conn: DbConnection, tenant_id: str) -> list[str]:
    """Ids of the tenant's active owners, locked until the transaction ends.

    Every change that could remove an owner takes these locks first, so two such changes
    in one tenant run one after the other and cannot together remove the last owner.
    """
    rows = await conn.fetch(
        "SELECT user_id FROM users WHERE tenant_id = $1 AND role = $2 AND active"
        " ORDER BY user_id FOR UPDATE",
        tenant_id,
        int(Role.OWNER),
    )
    return [str(row["user_id"]) for row in rows]


async def set_role(conn: DbConnection, user: User, role: Role, now: datetime) -> User:
    row = await conn.fetchrow(
        f"UPDATE users SET role = $3, updated_at = $4 WHERE tenant_id = $1 AND user_id = $2"
        f" RETURNING {_USER_COLUMNS}",
        user.tenant_id,
        user.user_id,
        int(role),
        now,
    )
    assert row is not None
    return _user(row)


async def deactivate(conn: DbConnection, user: User, now: datetime) -> User:
    row = await conn.fetchrow(
        f"UPDATE users SET active = false, updated_at = $3 WHERE tenant_id = $1 AND user_id = $2"
        f" RETURNING {_USER_COLUMNS}",
        user.tenant_id,
        user.user_id,
        now,
    )
    assert row is not None
    return _user(row)


async def set_password_hash(conn: DbConnection, user_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash
    )


async def throttle_of(conn: DbConnection, tenant_slug: str, email: str) -> ThrottleState | None:
    row = await conn.fetchrow(
        "SELECT failures, last_failure_at, blocked_until FROM login_throttle"
        " WHERE tenant_slug = $1 AND email = $2",
        tenant_slug,
        email.lower(),
    )
    if row is None:
        return None
    return ThrottleState(
        failures=row["failures"],
        last_failure_at=row["last_failure_at"],
        blocked_until=row["blocked_until"],
    )


async def save_throttle(
    conn: DbConnection, tenant_slug: str, email: str, state: ThrottleState
) -> None:
    await conn.execute(
        "INSERT INTO login_throttle (tenant_slug, email, failures, last_failure_at, blocked_until)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_slug, email) DO UPDATE SET"
        " failures = excluded.failures, last_failure_at = excluded.last_failure_at,"
        " blocked_until = excluded.blocked_until",
        tenant_slug,
        email.lower(),
        state.failures,
        state.last_failure_at,
        state.blocked_until,
    )


async def clear_throttle(conn: DbConnection, tenant_slug: str, email: str) -> None:
    await conn.execute(
        "DELETE FROM login_throttle WHERE tenant_slug = $1 AND email = $2",
        tenant_slug,
        email.lower(),
    )
