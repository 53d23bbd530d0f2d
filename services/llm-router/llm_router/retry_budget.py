"""The retry budget: retries and hedges may add at most `ratio` of the requests seen over a
sliding window, plus a small floor (`min_per_second` x window), so an outage never multiplies
upstream load (Finagle's RetryBudget, Envoy's retry budgets).

Per process, deliberately: every replica allows `ratio` of its own traffic, so the fleet as a
whole stays within the same ratio (only the floor scales with replicas) without a Redis round
trip on every request, and without one replica's burst spending another's allowance. Requests
deposit, retries and hedges withdraw; the window is `buckets` buckets of the router's clock.
"""

from __future__ import annotations

import math

from llm_router.clock import Clock
from llm_router.config import RetryBudgetConfig


class RetryBudget:
    def __init__(self, config: RetryBudgetConfig, *, clock: Clock, buckets: int = 10) -> None:
        self._clock = clock
        self._buckets = buckets
        self._ids = [-1] * buckets
        self._requests = [0] * buckets
        self._spent = [0] * buckets
        self.configure(config)

    def configure(self, config: RetryBudgetConfig) -> None:
        """Apply a new configuration (SIGHUP); the counts seen so far are kept."""
        self._config = config
        self._width = config.window_s / self._buckets

    def _slot(self) -> tuple[int, int]:
        bucket = int(self._clock.time() / self._width)
        slot = bucket % self._buckets
        if self._ids[slot] != bucket:
            self._ids[slot] = bucket
            self._requests[slot] = 0
            self._spent[slot] = 0
        return bucket, slot

    def record_request(self) -> None:
        """A new call arrived (its first attempt is free)."""
        _, slot = self._slot()
        self._requests[slot] += 1

    def _allowance(self, bucket: int) -> float:
        oldest = bucket - self._buckets
        requests = spent = 0
        for index in range(self._buckets):
            if self._ids[index] > oldest:
                requests += self._requests[index]
                spent += self._spent[index]
        config = self._config
        return config.ratio * requests + config.min_per_second * config.window_s - spent

    def try_spend(self) -> bool:
        """Take one retry or hedge from the budget; False when it is spent."""
        bucket, slot = self._slot()
        if self._allowance(bucket) < 1:
            return False
        self._spent[slot] += 1
        return True

    def refund(self) -> None:
        """Give back a retry or hedge that was not sent after all."""
        bucket, slot = self._slot()
        for offset in range(self._buckets):
            index = (slot - offset) % self._buckets
            if self._ids[index] > bucket - self._buckets and self._spent[index] > 0:
                self._spent[index] -= 1
                return

    def available(self) -> int:
        """Retries and hedges allowed right now."""
        bucket, _ = self._slot()
        return max(0, math.floor(self._allowance(bucket)))

    @property
    def retry_after_s(self) -> float:
        """When to try again once it is spent: the oldest bucket leaves the window by then."""
        return self._width
