"""Operator weight overrides (SetDeploymentWeight), shared by every replica through Redis.

An override replaces a deployment's configured weight until it is set back to the configured
value. The replica that receives the call applies it at once; the others pick it up on their
next refresh (every `refresh_interval_s`), which keeps the per-call path free of Redis reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio
import redis.exceptions

logger = logging.getLogger("llm_router.weights")


class WeightOverrides:
    def __init__(
        self,
        redis_client: Callable[[], redis.asyncio.Redis],
        *,
        key_prefix: str,
        refresh_interval_s: float = 2.0,
    ) -> None:
        self._redis = redis_client
        self._key = f"{{{key_prefix}}}:weights"
        self._interval = refresh_interval_s
        self._overrides: dict[str, int] = {}

    def weight(self, deployment_id: str, configured: int) -> int:
        return self._overrides.get(deployment_id, configured)

    async def set(self, deployment_id: str, weight: int, *, configured: int) -> None:
        if weight == configured:
            await self._redis().hdel(self._key, deployment_id)
            self._overrides.pop(deployment_id, None)
        else:
            await self._redis().hset(self._key, deployment_id, str(weight))
            self._overrides[deployment_id] = weight

    async def refresh(self) -> None:
        raw = await self._redis().hgetall(self._key)
        self._overrides = {_text(key): int(value) for key, value in raw.items()}

    async def run(self) -> None:
        """Refresh forever (a background task of the app)."""
        while True:
            try:
                await self.refresh()
            except (redis.exceptions.RedisError, OSError, ValueError) as error:
                logger.warning(
                    "cannot refresh weight overrides", extra={"error_type": type(error).__name__}
                )
            await asyncio.sleep(self._interval)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
