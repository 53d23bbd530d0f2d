"""Latency statistics per deployment: recent samples and their percentiles, for GetRouterStatus
and for hedge delays (which read a percentile on every call, so it is cached)."""

from __future__ import annotations

import math
from typing import Final

_SAMPLES: Final = 512
# After this many new samples the cached sort is redone; percentiles lag at most this much.
_RESORT_EVERY: Final = 16


class LatencyWindow:
    """The last `size` samples (seconds) of one latency."""

    __slots__ = ("_count", "_next", "_samples", "_since_sort", "_size", "_sorted")

    def __init__(self, size: int = _SAMPLES) -> None:
        self._size = size
        self._samples: list[float] = []
        self._next = 0
        self._count = 0
        self._sorted: list[float] | None = None
        self._since_sort = 0

    @property
    def count(self) -> int:
        """Samples held (at most `size`)."""
        return len(self._samples)

    def add(self, seconds: float) -> None:
        if len(self._samples) < self._size:
            self._samples.append(seconds)
        else:
            self._samples[self._next] = seconds
            self._next = (self._next + 1) % self._size
        self._since_sort += 1
        if self._sorted is not None and (
            self._since_sort >= _RESORT_EVERY or len(self._samples) < 4 * _RESORT_EVERY
        ):
            self._sorted = None

    def percentile(self, p: float) -> float | None:
        """The nearest-rank `p`th percentile (0 < p <= 100), or None without samples."""
        if not self._samples:
            return None
        ordered = self._sorted
        if ordered is None:
            ordered = self._sorted = sorted(self._samples)
            self._since_sort = 0
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]


class DeploymentStats:
    """What this replica observed of one deployment."""

    __slots__ = ("first_token", "in_flight", "latency")

    def __init__(self) -> None:
        #: Successful unary calls, request to answer.
        self.latency = LatencyWindow()
        #: Successful streams, request to first token.
        self.first_token = LatencyWindow()
        self.in_flight = 0
