"""The router's Redis connection, with short timeouts.

Breaker admission sits on every call's path, so a Redis that hangs must cost a call a fraction
of a second (after which the breakers fail open), not the runtime's default five seconds.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio

from switchboard_runtime.datastores import NotOpenError
from switchboard_runtime.redis_client import connect_redis

#: Bound on every Redis command and connection attempt.
REDIS_TIMEOUT_S: Final = 0.25


class RouterRedis:
    """A Redis client for the router's keys; a `Datastore` for `attach`."""

    def __init__(self, url: str, *, timeout_s: float = REDIS_TIMEOUT_S) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._client: redis.asyncio.Redis | None = None

    @property
    def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            raise NotOpenError("Redis is not connected")
        return self._client

    async def open(self) -> None:
        self._client = await connect_redis(self._url, socket_timeout_seconds=self._timeout_s)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
