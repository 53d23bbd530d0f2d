"""Hedged requests: when a call has no answer (or a stream no first token) after the hedge
delay, the same request goes to another deployment and the first to succeed wins.

`hedge_delay` is the deployment's observed latency percentile (streams: time to first token),
clamped to the configured bounds, and the upper bound until enough samples exist. `AttemptRace`
holds the attempts of one call running side by side; each attempt signals once (its answer,
its first token, or its failure) through a future, and the call waits for the next signal or
its next timer (a hedge, a retry's backoff). Losers are cancelled by the caller at once, which
closes their HTTP connections; see router.py.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from llm_router.config import HedgingConfig
from llm_router.stats import LatencyWindow

A = TypeVar("A")


def hedge_delay(config: HedgingConfig, window: LatencyWindow) -> float:
    """Seconds to wait for an attempt before hedging it."""
    if window.count < config.min_samples:
        return config.max_delay_s
    observed = window.percentile(config.percentile)
    if observed is None:
        return config.max_delay_s
    return min(max(observed, config.min_delay_s), config.max_delay_s)


class AttemptRace(Generic[A]):
    """The attempts of one call that have not signalled yet."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Future[object], A] = {}

    def add(self, attempt: A, signal: asyncio.Future[object]) -> None:
        self._waiting[signal] = attempt

    def discard(self, signal: asyncio.Future[object]) -> None:
        self._waiting.pop(signal, None)

    @property
    def waiting(self) -> list[A]:
        return list(self._waiting.values())

    def __len__(self) -> int:
        return len(self._waiting)

    async def next(self, *, until: float | None) -> list[A]:
        """The attempts that signalled next, or [] if the loop time `until` came first."""
        loop = asyncio.get_running_loop()
        timeout = None if until is None else max(0.0, until - loop.time())
        if not self._waiting:
            if timeout is None:
                raise RuntimeError("nothing to wait for")
            await asyncio.sleep(timeout)
            return []
        done, _ = await asyncio.wait(
            self._waiting.keys(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        return [self._waiting.pop(signal) for signal in done]
