"""Redis connections (redis.asyncio) that are known to work before the service starts serving."""

from __future__ import annotations

import logging

import redis.asyncio

from switchboard_runtime.redaction import redact_url

__all__ = ["connect_redis"]

logger = logging.getLogger("switchboard.redis")


async def connect_redis(
    url: str,
    *,
    socket_timeout_seconds: float = 5.0,
    health_check_interval_seconds: float = 30.0,
) -> redis.asyncio.Redis:
    """A client for `url` (redis://, rediss:// or unix://) after a successful PING.

    `socket_timeout_seconds` bounds every command so a hung Redis fails requests instead of
    stalling them; the periodic health check replaces connections a proxy silently dropped.
    """
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
        url,
        socket_timeout=socket_timeout_seconds,
        socket_connect_timeout=socket_timeout_seconds,
        health_check_interval=health_check_interval_seconds,
    )
    try:
        await client.ping()
    except BaseException:
        await client.aclose()
        raise
    logger.info("redis connected", extra={"url": redact_url(url)})
    return client
