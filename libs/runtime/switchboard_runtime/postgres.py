"""Postgres access: connection pools, per-service databases and plain-SQL migrations.

Migrations are files named `NNNN_description.sql` (`0001_create_users.sql`), numbered from
0001 without gaps, applied in order, each in its own transaction, and recorded in
`schema_migrations` with a SHA-256 checksum. Editing an applied file is an error (write a new
migration instead). Replicas starting together serialize on a Postgres advisory lock, so each
file is applied exactly once. Statements that cannot run in a transaction (CREATE INDEX
CONCURRENTLY) are not supported.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import asyncpg

__all__ = [
    "MigrationError",
    "apply_migrations",
    "create_pool",
    "database_dsn",
    "ensure_database",
    "migration_lock_id",
]

logger = logging.getLogger("switchboard.postgres")

_MIGRATION_FILE: Final = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# Lower-case identifiers only: they need no quoting rules and cannot smuggle SQL.
_DATABASE_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_CREATE_SCHEMA_MIGRATIONS: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migrations directory or the database's migration history is inconsistent."""


@dataclass(frozen=True, slots=True)
class _Migration:
    version: str
    name: str
    sql: str
    checksum: str


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float | None = 30.0,
    max_inactive_connection_lifetime: float = 300.0,
    **connect_kwargs: Any,
) -> asyncpg.Pool:
    """An asyncpg pool for `dsn`; the first connection is made before this returns.

    `command_timeout` bounds every statement so a stuck query cannot hold a request forever;
    idle connections are recycled after `max_inactive_connection_lifetime` seconds so
    failovers and PgBouncer restarts are picked up.
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        max_inactive_connection_lifetime=max_inactive_connection_lifetime,
        **connect_kwargs,
    )
    return pool


def migration_lock_id(name: str) -> int:
    """A stable signed 64-bit advisory lock id derived from `name`."""
    digest = hashlib.blake2b(f"switchboard-migrations:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _service_name_of(directory: Path) -> str:
    # services/identity/migrations -> "identity"; a directory named otherwise names itself.
    resolved = directory.resolve()
    return resolved.parent.name if resolved.name == "migrations" else resolved.name


def _read_migrations(directory: Path) -> list[_Migration]:
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    migrations: list[_Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files must be named NNNN_description.sql "
                "(lower-case letters, digits and underscores)"
            )
        data = path.read_bytes()
        migrations.append(
            _Migration(
                version=match.group(1),
                name=path.stem,
                sql=data.decode("utf-8"),
                checksum=hashlib.sha256(data).hexdigest(),
            )
        )
    for expected, migration in enumerate(migrations, start=1):
        number = int(migration.version)
        if number < expected:
            raise MigrationError(f"{migration.name}: duplicate migration number {number:04d}")
        if number > expected:
            raise MigrationError(
                f"{migration.name}: migration {expected:04d} is missing; numbers must not skip"
            )
    return migrations


async def apply_migrations(
    pool: asyncpg.Pool, directory: Path, *, lock_id: int | None = None
) -> list[str]:
    """Apply the migrations in `directory` not yet applied; return their names in order.

    Holds `pg_advisory_lock(lock_id)` on one connection for the whole run, so concurrent
    callers (replicas starting together) wait and then find nothing left to do. The default
    lock id derives from the service name (the folder holding `migrations/`).
    """
    migrations = _read_migrations(directory)
    if lock_id is None:
        lock_id = migration_lock_id(_service_name_of(directory))
    applied_now: list[str] = []
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", lock_id)
        try:
            # Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide.
            await connection.execute(_CREATE_SCHEMA_MIGRATIONS)
            rows = await connection.fetch("SELECT version, name, checksum FROM schema_migrations")
            recorded = {row["version"]: (row["name"], row["checksum"]) for row in rows}
            _check_history(migrations, recorded)
            for migration in migrations:
                if migration.version in recorded:
                    continue
                try:
                    async with connection.transaction():
                        await connection.execute(migration.sql)
                        await connection.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES ($1, $2, $3)",
                            migration.version,
                            migration.name,
                            migration.checksum,
                        )
                except asyncpg.PostgresError as error:
                    raise MigrationError(f"{migration.name} failed: {error}") from error
                logger.info("applied migration %s", migration.name)
                applied_now.append(migration.name)
        finally:
            # A broken connection has already released its session-level lock.
            if not connection.is_closed():
                await connection.execute("SELECT pg_advisory_unlock($1)", lock_id)
    return applied_now


def _check_history(migrations: list[_Migration], recorded: dict[str, tuple[str, str]]) -> None:
    for migration in migrations:
        if migration.version not in recorded:
            continue
        name, checksum = recorded[migration.version]
        if checksum != migration.checksum:
            raise MigrationError(
                f"{migration.name}: file changed after it was applied (as {name}); "
                "add a new migration instead of editing an applied one"
            )
    known = {migration.version for migration in migrations}
    unknown = sorted(version for version in recorded if version not in known)
    if unknown:
        # A newer release applied these; this older build may still run against the schema
        # during a rolling deploy, so this is worth a warning, not a refusal to start.
        logger.warning(
            "database has migrations this build does not know", extra={"versions": unknown}
        )


def database_dsn(dsn: str, database: str) -> str:
    """`dsn` pointing at `database` instead, keeping user, password, host, port and options.

    Works for TCP URLs (`postgresql://user:pw@host:5432/db?sslmode=require`) and Unix-socket
    URLs (`postgresql://postgres@/postgres?host=/run/pg`).
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("expected a postgresql:// URL")
    # A dbname/database query parameter would override the path; drop it.
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("dbname", "database")
    ]
    path = "/" + quote(database, safe="")
    # `safe="/"` keeps socket directories readable: `?host=/run/pg`, not `?host=%2Frun%2Fpg`.
    query_string = urlencode(query, safe="/")
    return f"{parts.scheme}://{parts.netloc}{path}" + (f"?{query_string}" if query_string else "")


async def ensure_database(server_dsn: str, name: str) -> str:
    """Create database `name` if it does not exist and return a DSN for it.

    `server_dsn` is any database on the server the caller may CREATE DATABASE from (usually
    `postgres`). Concurrent callers are fine: losing the race counts as success.
    """
    if _DATABASE_NAME.fullmatch(name) is None:
        raise ValueError(
            f"invalid database name {name!r}: use lower-case letters, digits and underscores"
        )
    connection = await asyncpg.connect(server_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
                logger.info("created database %s", name)
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                # Another replica created it between our check and our CREATE: fine.
                logger.info("database %s was created concurrently", name)
    finally:
        await connection.close()
    return database_dsn(server_dsn, name)
