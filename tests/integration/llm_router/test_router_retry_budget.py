"""Retries prefer another deployment and are bounded by the retry budget: with every
deployment failing, upstream attempts stay near 1.1x the calls instead of multiplying."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc

from switchboard.llm.v1 import llm_pb2
from switchboard_runtime.grpc_errors import rich_status_of
from switchboard_standins import FaultProfile
from tests.integration.llm_router.router_support import (
    StartRouter,
    config_yaml,
    generation_requests,
    standin_deployment,
)

CALLS = 200
RATIO = 0.1
#: min_per_second x window_seconds: retries always allowed, however few calls there were.
FLOOR = 1 * 10


async def test_with_every_deployment_failing_upstream_attempts_stay_within_the_budget(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    failing = FaultProfile(error_rates={503: 1.0})
    first, second = (
        await standins("openai", profile=failing),
        await standins("anthropic", profile=failing),
    )
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(first, "first"), standin_deployment(second, "second")]},
            hedging={"enabled": False},
            retries={"max_attempts": 3, "backoff_base_ms": 1, "backoff_max_ms": 2},
            retry_budget={"ratio": RATIO, "min_per_second": 1, "window_seconds": 10},
            # Breakers would stop the traffic on their own; here the budget alone must hold.
            breaker={"minimum_calls": 100_000, "consecutive_failures": 0},
        )
    )

    async def call() -> grpc.aio.AioRpcError:
        try:
            await router.complete()
        except grpc.aio.AioRpcError as error:
            return error
        raise AssertionError("a call succeeded against failing deployments")

    errors: list[grpc.aio.AioRpcError] = []
    for _ in range(CALLS // 20):
        errors += await asyncio.gather(*(call() for _ in range(20)))

    upstream = generation_requests(first) + generation_requests(second)
    assert CALLS <= upstream <= CALLS * (1 + RATIO) + FLOOR
    codes = Counter(error.code() for error in errors)
    assert set(codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] > CALLS / 2  # most found the budget spent
    exhausted = next(e for e in errors if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "retry budget" in (exhausted.details() or "")
    status = rich_status_of(exhausted)
    assert status is not None and status.details  # RetryInfo: when to come back
    assert (await router.stub.GetRouterStatus(
        llm_pb2.GetRouterStatusRequest(), metadata=router.operator
    )).retry_budget_available == 0  # fmt: skip


async def test_a_failed_attempt_is_retried_on_another_deployment_at_once(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    broken = await standins("openai", profile=FaultProfile(error_rates={500: 1.0}))
    healthy = await standins("anthropic")
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(broken, "broken"), standin_deployment(healthy, "ok")]},
            hedging={"enabled": False},
        )
    )

    reply = await router.complete()

    assert reply.deployment_id == "ok"
    assert [(a.deployment_id, a.outcome) for a in reply.attempts] == [
        ("broken", llm_pb2.ATTEMPT_OUTCOME_ERROR),
        ("ok", llm_pb2.ATTEMPT_OUTCOME_SUCCESS),
    ]
    assert "500" in reply.attempts[0].error


async def test_a_request_the_provider_rejects_is_not_retried(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    picky = await standins("openai", profile=FaultProfile(error_rates={400: 1.0}))
    other = await standins("anthropic")
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(picky, "picky"), standin_deployment(other, "other")]}
        )
    )

    try:
        await router.complete()
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        raise AssertionError("a rejected request answered OK")
    assert (generation_requests(picky), generation_requests(other)) == (1, 0)
    status = (await router.status())["picky"]
    assert (status.window_calls, status.window_failures) == (0, 0)  # not the deployment's fault
