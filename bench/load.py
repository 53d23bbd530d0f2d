"""A closed-loop load generator: N workers call as fast as answers come; latency percentiles."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def closed_loop(
    call: Callable[[int, int], Awaitable[Any]],
    *,
    concurrency: int,
    total_calls: int,
    max_seconds: float,
) -> dict[str, float]:
    """Run `call(worker, n)` from `concurrency` workers until `total_calls` or `max_seconds`.

    Returns p50/p99 latency in ms, throughput in calls per second and the error count.
    """
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.monotonic() + max_seconds

    async def worker(index: int) -> None:
        nonlocal issued, errors
        while issued < total_calls and time.monotonic() < deadline:
            issued += 1
            number = issued
            started = time.perf_counter()
            try:
                await call(index, number)
            except Exception:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "calls": len(latencies),
        "errors": errors,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else float("nan"),
        "throughput_per_s": round(len(latencies) / elapsed, 1),
    }


async def paced(
    call: Callable[[int, int], Awaitable[Any]],
    *,
    rate_per_s: float,
    total_calls: int,
    max_in_flight: int,
) -> dict[str, float]:
    """Start `call(slot, n)` at a steady rate (open loop), at most `max_in_flight` at once.

    Latency here is what one call costs when the system is not saturated: the number to
    compare between paths, where a closed loop would mostly measure queueing.
    """
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Queue[int]()
    for slot in range(max_in_flight):
        slots.put_nowait(slot)
    tasks: set[asyncio.Task[None]] = set()

    async def one(slot: int, number: int) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            await call(slot, number)
            latencies.append((time.perf_counter() - started) * 1000)
        except Exception:
            errors += 1
        finally:
            slots.put_nowait(slot)

    begin = time.perf_counter()
    for number in range(total_calls):
        delay = begin + number / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load generator, not synchronising a test
        slot = await slots.get()
        task = asyncio.create_task(one(slot, number))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return {
        "calls": len(latencies),
        "errors": errors,
        "rate_per_s": rate_per_s,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }
