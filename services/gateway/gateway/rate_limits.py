"""Token-bucket rate limits in Redis, per principal, per tenant, per client address and email.

Every bucket a call is charged to is checked and taken in one Lua script, atomically across
gateway replicas, with Redis's clock: a call passes only if every bucket has a token, and then
takes one from each. Buckets of different tenants are different keys, so one tenant's burst
cannot drain another's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from redis.commands.core import AsyncScript

from switchboard.access.v1 import access_pb2
from switchboard_runtime.datastores import RedisStore

_TAKE: Final = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local wait = 0
local states = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  states[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, (1 - tokens) / rate)
  end
end
if wait > 0 then
  return {0, tostring(wait)}
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', states[i] - 1, 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return {1, '0'}
"""


@dataclass(frozen=True, slots=True)
class Bucket:
    """Refills `rate` tokens a second up to `burst`."""

    rate: float
    burst: float

    @classmethod
    def parse(cls, text: str) -> Bucket:
        """`"RATE:BURST"` in calls per second, e.g. `"20:40"`."""
        rate_text, sep, burst_text = text.partition(":")
        rate, burst = float(rate_text), float(burst_text if sep else rate_text)
        if rate <= 0 or burst < 1:
            raise ValueError("expected RATE:BURST with RATE > 0 and BURST >= 1")
        return cls(rate, burst)

    def times(self, factor: float) -> Bucket:
        return Bucket(self.rate * factor, self.burst * factor)


@dataclass(frozen=True, slots=True)
class Charge:
    """One bucket a call is charged to."""

    key: str
    bucket: Bucket


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_seconds: float

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_seconds)))


CLASS_NAMES: Final = {
    access_pb2.RATE_LIMIT_CLASS_READ: "read",
    access_pb2.RATE_LIMIT_CLASS_WRITE: "write",
    access_pb2.RATE_LIMIT_CLASS_AUTH: "auth",
    access_pb2.RATE_LIMIT_CLASS_GENERATION: "generation",
    access_pb2.RATE_LIMIT_CLASS_WEBHOOK: "webhook",
}


class RateLimiter:
    def __init__(self, redis_store: RedisStore, *, prefix: str = "rl:") -> None:
        self._redis = redis_store
        self._prefix = prefix
        self._script: AsyncScript | None = None

    async def take(self, charges: list[Charge]) -> Verdict:
        """Take one token from every charged bucket, or none if any is empty."""
        if not charges:
            return Verdict(True, 0.0)
        arguments: list[float] = []
        for charge in charges:
            arguments += [charge.bucket.rate, charge.bucket.burst]
        if self._script is None:  # Redis is connected once the gateway has started
            self._script = self._redis.client.register_script(_TAKE)
        allowed, wait = await self._script(
            keys=[self._prefix + charge.key for charge in charges], args=arguments
        )
        return Verdict(bool(int(allowed)), float(wait))
