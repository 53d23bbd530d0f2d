"""The router's wall clock, behind a seam: breaker waits, cool-downs and the retry budget's
window read it, so tests move time by hand instead of sleeping.

Wall-clock seconds rather than monotonic ones because breaker state lives in Redis and is read
by every replica; replicas are expected to have synchronised clocks (NTP), and a skew of a few
milliseconds only shifts a breaker's wait by as much. Timeouts and hedge delays are durations
on the event loop's own monotonic clock and do not use this.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
