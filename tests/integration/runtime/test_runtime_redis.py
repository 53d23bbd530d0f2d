"""connect_redis talks to a real redis-server, here over its Unix socket."""

from __future__ import annotations

import pytest
import redis.exceptions

from switchboard_runtime import connect_redis


async def test_connect_redis_over_a_unix_socket_gives_a_working_client(redis_socket: str) -> None:
    client = await connect_redis(f"unix://{redis_socket}")
    try:
        await client.set("runtime-test:greeting", b"hello", ex=60)
        assert await client.get("runtime-test:greeting") == b"hello"
    finally:
        await client.aclose()


async def test_connect_redis_fails_at_once_when_nothing_listens(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    missing = tmp_path_factory.mktemp("no_redis") / "redis.sock"

    with pytest.raises(redis.exceptions.ConnectionError):
        await connect_redis(f"unix://{missing}")
