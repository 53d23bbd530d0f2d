"""Circuit breakers per deployment, their state shared by every router replica through Redis.

Each deployment has one Redis hash. Every transition, and the admission of half-open probes,
happens inside a Lua script, so replicas never race: however many callers arrive at once,
half-open admits exactly `half_open_probes` probes.

    CLOSED ──(window: calls >= minimum_calls and failure or slow-call rate >= threshold,
              or consecutive_failures failures in a row)──► OPEN
    OPEN ──(open wait elapsed; the next admission moves it)──► HALF_OPEN
    HALF_OPEN ──(every probe succeeded)──► CLOSED      (window cleared, trips reset)
    HALF_OPEN ──(a probe failed or was slow)──► OPEN   (wait x multiplier: it grows per trip)

The window is time-based: `buckets` buckets spanning `window_s` (a count-based window would
cover a few milliseconds at high traffic and hours at low traffic; minimum_calls guards the
latter); a run of consecutive failures trips it at once, whatever successes the window still
holds, so a deployment that died outright is cut off in a handful of calls. A 429 does not
count as a failure: it sets a cool-down (its Retry-After) during which
the deployment is not admitted. Caller errors (400-class) and cancelled hedge losers count as
nothing, but hand back a probe slot. Every permit carries the state's generation, so outcomes
of calls admitted before a transition cannot move the new state.

Time is the router's clock (`Clock`), passed into the scripts in milliseconds.

If Redis cannot be reached the board fails open: calls are admitted as if closed and not
recorded (one WARNING per interval), because an unavailable breaker store must not take the
whole router down with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import redis.asyncio
import redis.exceptions

from llm_router.clock import Clock
from llm_router.config import BreakerConfig
from llm_router.domain import BreakerState

__all__ = ["Admission", "BreakerBoard", "BreakerSnapshot", "Permit", "Refusal", "Verdict"]

logger = logging.getLogger("llm_router.breaker")

#: Breaker hashes expire when untouched for this long (deployments removed from the config).
_KEY_TTL_MS: Final = 7 * 24 * 3600 * 1000
#: Plain successes wait this long to be recorded together in one round trip.
_SUCCESS_BATCH_DELAY_S: Final = 0.01
_REDIS_WARNING_INTERVAL_S: Final = 10.0

# Fields: st (0 closed, 1 open, 2 half-open), gen, trips, until (open until, ms), hp_adm
# (probes admitted), hp_ok (probes succeeded), hp_at (half-open since, ms), cool (cool-down
# until, ms); window bucket i: i<i> (bucket number), c<i> calls, f<i> failures, s<i> slow.

# KEYS: candidate hashes, most preferred first. ARGV: now_ms, probes, probe_timeout_ms, ttl_ms.
# Admits the first candidate that may take a call, and reports every other candidate that
# may not (those after the admitted one too, so that selection can leave them out entirely).
# Returns {index admitted (1-based, 0: none), kind (0 closed, 1 probe), gen, became_half_open,
#          then per refused candidate: index, reason (1 open, 2 probes taken, 3 cooling),
#          remaining_ms}.
_ADMIT: Final = """
local now = tonumber(ARGV[1])
local probes = tonumber(ARGV[2])
local probe_timeout = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local admitted = {0, 0, 0, 0}
local refused = {}
local function refuse(i, reason, remaining)
  refused[#refused + 1] = i
  refused[#refused + 1] = reason
  refused[#refused + 1] = remaining
end
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'st', 'gen', 'until', 'hp_adm', 'hp_at', 'cool')
  local st = tonumber(v[1]) or 0
  local gen = tonumber(v[2]) or 0
  local cool = tonumber(v[6]) or 0
  local taken = tonumber(v[4]) or 0
  local since = tonumber(v[5]) or now
  local open_until = tonumber(v[3]) or 0
  local choosing = admitted[1] == 0
  if cool > now then
    refuse(i, 3, cool - now)
  elseif st == 1 and now < open_until then
    refuse(i, 1, open_until - now)
  elseif st == 0 then
    if choosing then admitted = {i, 0, gen, 0} end
  else
    -- Half-open, or open with its wait over (the admission that finds it so moves it).
    local moved = 0
    if st == 1 then
      taken = 0
      since = now
      if choosing then
        gen = gen + 1
        moved = 1
        redis.call('HSET', key, 'st', 2, 'gen', gen, 'hp_adm', 0, 'hp_ok', 0, 'hp_at', now)
        redis.call('PEXPIRE', key, ttl)
      end
    end
    if taken >= probes and now - since >= probe_timeout then
      -- The probes were never reported (their router died): start a new round.
      taken = 0
      if choosing then redis.call('HSET', key, 'hp_ok', 0, 'hp_at', now) end
    end
    if taken >= probes then
      refuse(i, 2, 0)
    elseif choosing then
      redis.call('HSET', key, 'hp_adm', taken + 1)
      admitted = {i, 1, gen, moved}
    end
  end
end
for _, x in ipairs(refused) do admitted[#admitted + 1] = x end
return admitted
"""

# KEYS[1]: the hash. ARGV: now_ms, kind, gen, outcome (s success, f failure, i ignore,
# r rate limited), slow (0/1), cool_until_ms, window_ms, buckets, minimum_calls, failure_rate,
# slow_rate, probes, wait_ms, wait_max_ms, wait_multiplier, ttl_ms, consecutive_failures.
# Returns {state, transition (0 none, 1 opened, 2 closed), gen}.
_RECORD: Final = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local kind = tonumber(ARGV[2])
local pgen = tonumber(ARGV[3])
local outcome = ARGV[4]
local slow = tonumber(ARGV[5])
local nb = tonumber(ARGV[8])
local v = redis.call('HMGET', key, 'st', 'gen', 'trips', 'cool', 'cf')
local st = tonumber(v[1]) or 0
local gen = tonumber(v[2]) or 0
local ttl = tonumber(ARGV[16])
local in_a_row = tonumber(v[5]) or 0

local function clear_window()
  for i = 0, nb - 1 do
    redis.call('HDEL', key, 'i' .. i, 'c' .. i, 'f' .. i, 's' .. i)
  end
end

local function open()
  local trips = (tonumber(v[3]) or 0) + 1
  local wait = tonumber(ARGV[13]) * (tonumber(ARGV[15]) ^ (trips - 1))
  wait = math.floor(math.min(wait, tonumber(ARGV[14])))
  gen = gen + 1
  redis.call('HSET', key, 'st', 1, 'gen', gen, 'trips', trips, 'until', now + wait,
             'hp_adm', 0, 'hp_ok', 0, 'cf', 0)
  clear_window()
  redis.call('PEXPIRE', key, ttl)
  return {1, 1, gen}
end

if outcome == 'r' then
  local cool_until = tonumber(ARGV[6])
  if cool_until > (tonumber(v[4]) or 0) then
    redis.call('HSET', key, 'cool', cool_until)
    redis.call('PEXPIRE', key, ttl)
  end
  if kind == 1 and st == 2 and pgen == gen then
    redis.call('HINCRBY', key, 'hp_adm', -1)
  end
  return {st, 0, gen}
end

if kind == 1 then
  if st ~= 2 or pgen ~= gen then
    return {st, 0, gen}
  end
  if outcome == 'i' then
    redis.call('HINCRBY', key, 'hp_adm', -1)
    return {st, 0, gen}
  end
  if outcome == 'f' or slow == 1 then
    return open()
  end
  local ok = redis.call('HINCRBY', key, 'hp_ok', 1)
  if ok >= tonumber(ARGV[12]) then
    gen = gen + 1
    redis.call('HSET', key, 'st', 0, 'gen', gen, 'trips', 0, 'hp_adm', 0, 'hp_ok', 0, 'cf', 0)
    clear_window()
    return {0, 2, gen}
  end
  return {st, 0, gen}
end

if st ~= 0 or pgen ~= gen or outcome == 'i' then
  return {st, 0, gen}
end
local bucket_ms = tonumber(ARGV[7]) / nb
local bucket = math.floor(now / bucket_ms)
local slot = bucket % nb
if tonumber(redis.call('HGET', key, 'i' .. slot)) ~= bucket then
  redis.call('HSET', key, 'i' .. slot, bucket, 'c' .. slot, 0, 'f' .. slot, 0, 's' .. slot, 0)
end
redis.call('HINCRBY', key, 'c' .. slot, 1)
if outcome == 'f' then
  redis.call('HINCRBY', key, 'f' .. slot, 1)
end
if slow == 1 then
  redis.call('HINCRBY', key, 's' .. slot, 1)
end
redis.call('PEXPIRE', key, ttl)
if outcome == 'f' then
  local limit = tonumber(ARGV[17])
  in_a_row = redis.call('HINCRBY', key, 'cf', 1)
  if limit > 0 and in_a_row >= limit then
    return open()
  end
elseif in_a_row > 0 then
  redis.call('HSET', key, 'cf', 0)
end
if outcome == 's' and slow == 0 then
  -- A fast success never opens the breaker: skip the window sum.
  return {0, 0, gen}
end
local calls, failures, slows = 0, 0, 0
for i = 0, nb - 1 do
  local w = redis.call('HMGET', key, 'i' .. i, 'c' .. i, 'f' .. i, 's' .. i)
  local b = tonumber(w[1])
  if b and b > bucket - nb then
    calls = calls + (tonumber(w[2]) or 0)
    failures = failures + (tonumber(w[3]) or 0)
    slows = slows + (tonumber(w[4]) or 0)
  end
end
if calls >= tonumber(ARGV[9]) and
   (failures >= tonumber(ARGV[10]) * calls or slows >= tonumber(ARGV[11]) * calls) then
  return open()
end
return {0, 0, gen}
"""

# KEYS: hashes, one per success (a key may repeat). ARGV: now_ms, window_ms, buckets, ttl_ms,
# then each success's gen. Fast successes of closed permits, batched: they never move a state,
# so they only count in the window (and end a run of consecutive failures).
_RECORD_SUCCESSES: Final = """
local now = tonumber(ARGV[1])
local nb = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local bucket = math.floor(now / (tonumber(ARGV[2]) / nb))
local slot = bucket % nb
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'st', 'gen', 'cf', 'i' .. slot)
  if (tonumber(v[1]) or 0) == 0 and (tonumber(v[2]) or 0) == tonumber(ARGV[4 + i]) then
    if tonumber(v[4]) ~= bucket then
      redis.call('HSET', key, 'i' .. slot, bucket, 'c' .. slot, 0, 'f' .. slot, 0, 's' .. slot, 0)
    end
    redis.call('HINCRBY', key, 'c' .. slot, 1)
    if (tonumber(v[3]) or 0) > 0 then
      redis.call('HSET', key, 'cf', 0)
    end
    redis.call('PEXPIRE', key, ttl)
  end
end
return 0
"""

# KEYS: hashes. ARGV: now_ms, window_ms, buckets. Returns per key: st, calls, failures, slow,
# open_remaining_ms, cool_remaining_ms.
_STATUS: Final = """
local now = tonumber(ARGV[1])
local nb = tonumber(ARGV[3])
local bucket = math.floor(now / (tonumber(ARGV[2]) / nb))
local out = {}
for _, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'st', 'until', 'cool')
  local st = tonumber(v[1]) or 0
  local calls, failures, slows = 0, 0, 0
  for i = 0, nb - 1 do
    local w = redis.call('HMGET', key, 'i' .. i, 'c' .. i, 'f' .. i, 's' .. i)
    local b = tonumber(w[1])
    if b and b > bucket - nb then
      calls = calls + (tonumber(w[2]) or 0)
      failures = failures + (tonumber(w[3]) or 0)
      slows = slows + (tonumber(w[4]) or 0)
    end
  end
  local open_left = 0
  if st == 1 then
    open_left = math.max(0, (tonumber(v[2]) or 0) - now)
  end
  local cool_left = math.max(0, (tonumber(v[3]) or 0) - now)
  out[#out + 1] = st
  out[#out + 1] = calls
  out[#out + 1] = failures
  out[#out + 1] = slows
  out[#out + 1] = open_left
  out[#out + 1] = cool_left
end
return out
"""

# KEYS[1]: the hash. ARGV: buckets. Closes the breaker, clears its window and any cool-down.
_RESET: Final = """
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('HSET', KEYS[1], 'st', 0, 'trips', 0, 'hp_adm', 0, 'hp_ok', 0, 'cool', 0, 'cf', 0)
for i = 0, tonumber(ARGV[1]) - 1 do
  redis.call('HDEL', KEYS[1], 'i' .. i, 'c' .. i, 'f' .. i, 's' .. i)
end
return gen
"""

_STATES: Final = {0: BreakerState.CLOSED, 1: BreakerState.OPEN, 2: BreakerState.HALF_OPEN}
_REFUSALS: Final[dict[int, RefusalReason]] = {1: "open", 2: "half_open_full", 3: "cooling"}

RefusalReason = Literal["open", "half_open_full", "cooling"]
Verdict = Literal["success", "failure", "ignore", "rate_limited"]
_VERDICT_CODES: Final = {"success": "s", "failure": "f", "ignore": "i", "rate_limited": "r"}


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one call to a deployment; its outcome must be recorded once."""

    deployment_id: str
    #: A half-open probe: its outcome decides the breaker's next state.
    probe: bool
    generation: int
    #: Admitted without Redis (it was unreachable): nothing to record.
    unshared: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    deployment_id: str
    reason: RefusalReason
    remaining_s: float


@dataclass(frozen=True, slots=True)
class Admission:
    permit: Permit | None
    #: Every candidate that may not take a call now, and why.
    refusals: tuple[Refusal, ...]


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    state: BreakerState
    window_calls: int
    window_failures: int
    window_slow_calls: int
    open_remaining_s: float
    cooldown_remaining_s: float


TransitionListener = Callable[[str, BreakerState], None]


class BreakerBoard:
    """The breakers of every deployment, as Lua scripts over one Redis."""

    def __init__(
        self,
        redis_client: Callable[[], redis.asyncio.Redis],
        *,
        key_prefix: str,
        clock: Clock,
        on_transition: TransitionListener | None = None,
    ) -> None:
        """`redis_client` returns the connected client (it is opened after this is built)."""
        self._redis = redis_client
        # One hash tag for all keys: the multi-key admission script needs them in one slot.
        self._prefix = f"{{{key_prefix}}}:breaker:"
        self._clock = clock
        self._listener = on_transition
        self._scripts: dict[str, Any] = {}
        self._record_args: tuple[BreakerConfig, tuple[float, ...]] | None = None
        self._warned_at = float("-inf")
        self._successes: list[tuple[str, int]] = []
        self._successes_policy: BreakerConfig | None = None
        self._flusher: asyncio.Task[None] | None = None

    def key(self, deployment_id: str) -> str:
        return self._prefix + deployment_id

    def _on_transition(self, deployment_id: str, state: BreakerState) -> None:
        """A transition this replica made (others log and count their own)."""
        level = logging.WARNING if state is BreakerState.OPEN else logging.INFO
        logger.log(level, "breaker %s", state.name.lower(), extra={"deployment": deployment_id})
        if self._listener is not None:
            self._listener(deployment_id, state)

    def _script(self, name: str, source: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._redis().register_script(source)
        return script

    def _now_ms(self) -> int:
        return int(self._clock.time() * 1000)

    def _redis_failed(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _REDIS_WARNING_INTERVAL_S:
            self._warned_at = now
            logger.warning(
                "breaker state unavailable, admitting without it",
                extra={"error_type": type(error).__name__},
            )

    async def admit(self, candidates: Sequence[str], policy: BreakerConfig) -> Admission:
        """Admit the first of `candidates` (most preferred first) whose breaker allows a call."""
        keys = [self._prefix + deployment_id for deployment_id in candidates]
        try:
            reply = await self._script("admit", _ADMIT)(
                keys=keys,
                args=(
                    self._now_ms(),
                    policy.half_open_probes,
                    int(policy.half_open_timeout_s * 1000),
                    _KEY_TTL_MS,
                ),
            )
        except (redis.exceptions.RedisError, OSError) as error:
            self._redis_failed(error)
            return Admission(Permit(candidates[0], False, 0, unshared=True), ())
        index, kind, generation, moved = (int(x) for x in reply[:4])
        details = [int(x) for x in reply[4:]]
        refusals = tuple(
            Refusal(candidates[details[n] - 1], _REFUSALS[details[n + 1]], details[n + 2] / 1000)
            for n in range(0, len(details), 3)
        )
        if not index:
            return Admission(None, refusals)
        deployment_id = candidates[index - 1]
        if moved:
            self._on_transition(deployment_id, BreakerState.HALF_OPEN)
        return Admission(Permit(deployment_id, bool(kind), generation), refusals)

    def _policy_args(self, policy: BreakerConfig) -> tuple[float, ...]:
        cached = self._record_args
        if cached is not None and cached[0] is policy:
            return cached[1]
        args = (
            int(policy.window_s * 1000),
            policy.buckets,
            policy.minimum_calls,
            policy.failure_rate,
            policy.slow_call_rate,
            policy.half_open_probes,
            int(policy.open_wait_s * 1000),
            int(policy.open_wait_max_s * 1000),
            policy.open_wait_multiplier,
            _KEY_TTL_MS,
            policy.consecutive_failures,
        )
        self._record_args = (policy, args)
        return args

    async def record(
        self,
        permit: Permit,
        verdict: Verdict,
        policy: BreakerConfig,
        *,
        slow: bool = False,
        cooldown_s: float = 0.0,
    ) -> None:
        """Record how a permitted call ended (`cooldown_s` with a `rate_limited` verdict)."""
        if permit.unshared or (verdict == "ignore" and not permit.probe):
            return
        if self._successes:
            # Successes that happened before this outcome are recorded before it, or one
            # landing late would end a run of consecutive failures that came after it.
            await self.flush()
        now = self._now_ms()
        try:
            reply = await self._script("record", _RECORD)(
                keys=[self._prefix + permit.deployment_id],
                args=(
                    now,
                    1 if permit.probe else 0,
                    permit.generation,
                    _VERDICT_CODES[verdict],
                    1 if slow else 0,
                    now + int(cooldown_s * 1000),
                    *self._policy_args(policy),
                ),
            )
        except (redis.exceptions.RedisError, OSError) as error:
            self._redis_failed(error)
            return
        transition = int(reply[1])
        if transition == 1:
            self._on_transition(permit.deployment_id, BreakerState.OPEN)
        elif transition == 2:
            self._on_transition(permit.deployment_id, BreakerState.CLOSED)

    def record_success_soon(self, permit: Permit, policy: BreakerConfig) -> None:
        """Record a fast success of a closed permit with others, within a few milliseconds:
        it cannot move the breaker, so it need not cost a round trip of its own."""
        if permit.unshared or permit.probe:
            raise ValueError("only closed, shared permits are recorded in batches")
        self._successes.append((self._prefix + permit.deployment_id, permit.generation))
        self._successes_policy = policy
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(_SUCCESS_BATCH_DELAY_S)
        finally:
            self._flusher = None
            await self._flush_successes()

    async def _flush_successes(self) -> None:
        batch, self._successes = self._successes, []
        policy = self._successes_policy
        if not batch or policy is None:
            return
        try:
            await self._script("successes", _RECORD_SUCCESSES)(
                keys=[key for key, _ in batch],
                args=(
                    self._now_ms(),
                    int(policy.window_s * 1000),
                    policy.buckets,
                    _KEY_TTL_MS,
                    *(generation for _, generation in batch),
                ),
            )
        except (redis.exceptions.RedisError, OSError) as error:
            self._redis_failed(error)

    async def flush(self) -> None:
        """Record the successes waiting for their batch now."""
        flusher = self._flusher
        if flusher is not None:
            flusher.cancel()
            await asyncio.wait([flusher])
        await self._flush_successes()

    async def snapshots(
        self, deployment_ids: Sequence[str], policy: BreakerConfig
    ) -> dict[str, BreakerSnapshot]:
        """Each deployment's breaker as of now (an elapsed open wait shows as HALF_OPEN)."""
        if not deployment_ids:
            return {}
        reply = await self._script("status", _STATUS)(
            keys=[self._prefix + d for d in deployment_ids],
            args=(self._now_ms(), int(policy.window_s * 1000), policy.buckets),
        )
        values = [int(x) for x in reply]
        found: dict[str, BreakerSnapshot] = {}
        for n, deployment_id in enumerate(deployment_ids):
            st, calls, failures, slows, open_left, cool_left = values[6 * n : 6 * n + 6]
            state = _STATES[st]
            if state is BreakerState.OPEN and open_left == 0:
                state = BreakerState.HALF_OPEN
            found[deployment_id] = BreakerSnapshot(
                state, calls, failures, slows, open_left / 1000, cool_left / 1000
            )
        return found

    async def reset(self, deployment_id: str, policy: BreakerConfig) -> None:
        """Close the breaker, clear its window and any cool-down."""
        await self._script("reset", _RESET)(
            keys=[self._prefix + deployment_id], args=(policy.buckets,)
        )
        self._on_transition(deployment_id, BreakerState.CLOSED)
