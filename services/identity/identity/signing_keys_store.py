"""Postgres store of token signing keys."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from identity.signing_keys import SigningKey
from switchboard_runtime.datastores import DbConnection


def _key(row: asyncpg.Record) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        public_key=bytes(row["public_key"]),
        private_key_ciphertext=bytes(row["private_key_ciphertext"]),
        activated_at=row["activated_at"],
        retired_at=row["retired_at"],
    )


async def active_key(conn: DbConnection, now: datetime) -> SigningKey | None:
    """The key new tokens are signed with: the one activated most recently before `now`."""
    row = await conn.fetchrow(
        "SELECT * FROM signing_keys WHERE activated_at <= $1 AND (retired_at IS NULL"
        " OR retired_at > $1) ORDER BY activated_at DESC LIMIT 1",
        now,
    )
    return None if row is None else _key(row)


async def published_keys(conn: DbConnection, now: datetime) -> list[SigningKey]:
    """Keys that verify live tokens, and a key about to sign them (published in advance)."""
    rows = await conn.fetch(
        "SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1"
        " ORDER BY activated_at DESC",
        now,
    )
    return [_key(row) for row in rows]


async def add(conn: DbConnection, key: SigningKey, *, retire_others_at: datetime) -> None:
    """Add `key`, which signs from its activated_at on; earlier keys leave the JWKS at
    `retire_others_at`."""
    await conn.execute(
        "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL", retire_others_at
    )
    await conn.execute(
        "INSERT INTO signing_keys (kid, algorithm, public_key, private_key_ciphertext,"
        " activated_at) VALUES ($1, 'EdDSA', $2, $3, $4)",
        key.kid,
        key.public_key,
        key.private_key_ciphertext,
        key.activated_at,
    )
