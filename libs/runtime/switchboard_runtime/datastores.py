"""A service's connections to its datastores, opened at startup and closed at shutdown.

Each service owns its datastores; its composition root attaches the ones it needs to its
`ServiceApp`, which opens them (in order) before the port opens and closes them (in reverse)
after the server stopped::

    database = attach(app, PostgresDatabase(settings.database_url, migrations=MIGRATIONS))
    bus = attach(app, JetStreamBus(settings.nats_url, client_name="identity", streams=[IDENTITY]))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import asyncpg
import redis.asyncio
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from switchboard_runtime.event_streams import StreamSpec
from switchboard_runtime.jetstream import connect_nats, ensure_stream
from switchboard_runtime.postgres import apply_migrations, create_pool
from switchboard_runtime.redis_client import connect_redis
from switchboard_runtime.server import ServiceApp


class Datastore(Protocol):
    """Something a service opens before serving and closes after."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


D = TypeVar("D", bound=Datastore)


def attach(app: ServiceApp, datastore: D) -> D:
    """Open `datastore` when `app` starts and close it when `app` stops; return it."""
    app.add_startup(datastore.open)
    app.add_shutdown(datastore.close)
    return datastore


#: A connection as handlers hold it: straight from asyncpg or borrowed from a pool.
DbConnection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class PoolSource(Protocol):
    """Where use cases get the pool from: built before the pool opens, used after."""

    @property
    def pool(self) -> asyncpg.Pool: ...


class NotOpenError(RuntimeError):
    """A datastore was used before its service started (a wiring mistake)."""


class PostgresDatabase:
    """The service's own Postgres database: a pool, migrated to the latest schema on open."""

    def __init__(self, dsn: str, *, migrations: Path, max_connections: int = 10) -> None:
        self._dsn = dsn
        self._migrations = migrations
        self._max_connections = max_connections
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise NotOpenError("the database is not open")
        return self._pool

    async def open(self) -> None:
        pool = await create_pool(self._dsn, max_size=self._max_connections)
        try:
            await apply_migrations(pool, self._migrations)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class JetStreamBus:
    """A NATS connection with JetStream, and the streams this service publishes to declared."""

    def __init__(self, url: str, *, client_name: str, streams: Sequence[StreamSpec] = ()) -> None:
        self._url = url
        self._client_name = client_name
        self._streams = tuple(streams)
        self._client: NatsClient | None = None
        self._js: JetStreamContext | None = None

    @property
    def client(self) -> NatsClient:
        if self._client is None:
            raise NotOpenError("NATS is not connected")
        return self._client

    @property
    def jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise NotOpenError("NATS is not connected")
        return self._js

    async def open(self) -> None:
        client = await connect_nats(self._url, name=self._client_name)
        try:
            js = client.jetstream()
            for stream in self._streams:
                await ensure_stream(
                    js,
                    name=stream.name,
                    subjects=list(stream.subjects),
                    max_age_seconds=stream.max_age_seconds,
                )
        except BaseException:
            await client.close()
            raise
        self._client, self._js = client, js

    async def close(self) -> None:
        if self._client is not None:
            await self._client.drain()
            self._client, self._js = None, None


class RedisStore:
    """A Redis client for the service's own keys."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: redis.asyncio.Redis | None = None

    @property
    def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            raise NotOpenError("Redis is not connected")
        return self._client

    async def open(self) -> None:
        self._client = await connect_redis(self._url)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
