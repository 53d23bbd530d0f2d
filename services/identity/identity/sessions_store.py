"""Postgres store of sessions and their refresh tokens (kept only as hashes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from switchboard_runtime.datastores import DbConnection


@dataclass(frozen=True, slots=True)
class PresentedRefreshToken:
    """A stored refresh token with what refreshing it depends on."""

    session_id: str
    tenant_id: str
    user_id: str
    expires_at: datetime
    used_at: datetime | None
    session_expires_at: datetime
    session_revoked: bool


async def create_session(
    conn: DbConnection,
    *,
    session_id: str,
    tenant_id: str,
    user_id: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO sessions (session_id, tenant_id, user_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        session_id,
        tenant_id,
        user_id,
        now,
        expires_at,
    )


async def add_refresh_token(
    conn: DbConnection, *, token_hash: bytes, session_id: str, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        token_hash,
        session_id,
        now,
        expires_at,
    )


async def refresh_token_for_update(
    conn: DbConnection, token_hash: bytes
) -> PresentedRefreshToken | None:
    """The token and its session, locked so concurrent uses of one token run in turn."""
    row = await conn.fetchrow(
        "SELECT r.session_id, s.tenant_id, s.user_id, r.expires_at, r.used_at,"
        " s.expires_at AS session_expires_at, s.revoked_at IS NOT NULL AS session_revoked"
        " FROM refresh_tokens r JOIN sessions s USING (session_id)"
        " WHERE r.token_hash = $1 FOR UPDATE OF r, s",
        token_hash,
    )
    if row is None:
        return None
    return PresentedRefreshToken(
        session_id=str(row["session_id"]),
        tenant_id=str(row["tenant_id"]),
        user_id=str(row["user_id"]),
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        session_expires_at=row["session_expires_at"],
        session_revoked=row["session_revoked"],
    )


async def mark_used(conn: DbConnection, token_hash: bytes, now: datetime) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, now
    )


async def revoke_session(conn: DbConnection, session_id: str, now: datetime, reason: str) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3"
        " WHERE session_id = $1 AND revoked_at IS NULL",
        session_id,
        now,
        reason,
    )


async def revoke_user_sessions(conn: DbConnection, user_id: str, now: datetime, reason: str) -> int:
    result = await conn.execute(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3"
        " WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        now,
        reason,
    )
    return int(result.split()[-1])
