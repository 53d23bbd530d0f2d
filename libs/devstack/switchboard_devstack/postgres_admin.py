"""Database administration on a Postgres server: create and drop databases, derive their DSNs.

Works on any server DSN asyncpg accepts, embedded or the user's own (`DATABASE_URL`).
The sync wrappers run asyncpg on a private event loop in a worker thread, so they are safe to
call from plain code, from pytest fixtures and from inside a running event loop alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

_T = TypeVar("_T")
# Lower-case identifiers only: no quoting surprises, and the name is safe to interpolate.
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _checked(name: str) -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}: use [a-z_][a-z0-9_]*, at most 63")
    return name


def database_dsn(server_dsn: str, name: str) -> str:
    """The server DSN with its database replaced by `name` (host, socket dir, options kept)."""
    parts = urlsplit(server_dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{_checked(name)}", parts.query, ""))


async def create_database_async(server_dsn: str, name: str) -> str:
    """Create database `name` unless it exists; return its DSN."""
    _checked(name)
    connection = await asyncpg.connect(server_dsn, timeout=10)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Created concurrently by someone else is fine: it exists.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return database_dsn(server_dsn, name)


async def drop_database_async(server_dsn: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting anyone still connected to it."""
    _checked(name)
    connection = await asyncpg.connect(server_dsn, timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def _run(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def create_database(server_dsn: str, name: str) -> str:
    """Blocking `create_database_async`."""
    return _run(lambda: create_database_async(server_dsn, name))


def drop_database(server_dsn: str, name: str) -> None:
    """Blocking `drop_database_async`."""
    _run(lambda: drop_database_async(server_dsn, name))
