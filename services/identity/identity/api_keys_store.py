"""Postgres store of API keys (secrets only as hashes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from identity.domain import ApiKey
from switchboard_runtime.datastores import DbConnection

_COLUMNS = (
    "api_key_id, tenant_id, name, lookup_id, scopes, created_by_user_id, created_at,"
    " expires_at, last_used_at, revoked_at"
)
#: last_used_at is written at most this often per key, not on every call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        api_key_id=str(row["api_key_id"]),
        tenant_id=str(row["tenant_id"]),
        name=row["name"],
        lookup_id=row["lookup_id"],
        scopes=tuple(row["scopes"]),
        created_by_user_id=str(row["created_by_user_id"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


async def insert(conn: DbConnection, key: ApiKey, secret_hash: bytes) -> None:
    await conn.execute(
        f"INSERT INTO api_keys ({_COLUMNS}, secret_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        key.api_key_id,
        key.tenant_id,
        key.name,
        key.lookup_id,
        list(key.scopes),
        key.created_by_user_id,
        key.created_at,
        key.expires_at,
        key.last_used_at,
        key.revoked_at,
        secret_hash,
    )


async def by_lookup_id(conn: DbConnection, lookup_id: str) -> tuple[ApiKey, bytes] | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, secret_hash FROM api_keys WHERE lookup_id = $1", lookup_id
    )
    return None if row is None else (_api_key(row), bytes(row["secret_hash"]))


async def list_keys(
    conn: DbConnection,
    tenant_id: str,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
    include_revoked: bool,
    now: datetime,
) -> list[ApiKey]:
    conditions = ["tenant_id = $1"]
    args: list[Any] = [tenant_id]
    if not include_revoked:
        args.append(now)
        conditions.append(
            f"revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${len(args)})"
        )
    if after is not None:
        args.extend(after)
        conditions.append(f"(created_at, api_key_id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM api_keys WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, api_key_id LIMIT ${len(args)}",
        *args,
    )
    return [_api_key(row) for row in rows]


async def revoke(
    conn: DbConnection, tenant_id: str, api_key_id: str, now: datetime
) -> ApiKey | None:
    row = await conn.fetchrow(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3)"
        f" WHERE tenant_id = $1 AND api_key_id = $2 RETURNING {_COLUMNS}",
        tenant_id,
        api_key_id,
        now,
    )
    return None if row is None else _api_key(row)


async def touch(conn: DbConnection, api_key_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE api_keys SET last_used_at = $2 WHERE api_key_id = $1"
        " AND (last_used_at IS NULL OR last_used_at < $3)",
        api_key_id,
        now,
        now - LAST_USED_RESOLUTION,
    )
