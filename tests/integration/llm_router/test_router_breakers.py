"""Circuit breakers shared through Redis: a dead deployment costs callers nothing, stops getting
calls once its breaker opens, gets exactly N probes when half-open however many calls arrive,
and is trusted again once they succeed. Time is the router's hand-moved clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from switchboard.llm.v1 import llm_pb2
from switchboard_runtime.grpc_errors import rich_status_of
from switchboard_standins import Fault, StandinServer
from tests.integration.llm_router.router_support import (
    RouterUnderTest,
    StartRouter,
    config_yaml,
    generation_requests,
    standin_deployment,
)

PROBES = 3
OPEN_WAIT_S = 10.0
POLICIES: dict[str, Any] = {
    "hedging": {"enabled": False},
    "retries": {"max_attempts": 3, "backoff_base_ms": 1, "backoff_max_ms": 2},
    "retry_budget": {"ratio": 1.0, "min_per_second": 100},
    "breaker": {
        "window_seconds": 60,
        "minimum_calls": 4,
        "failure_rate": 0.5,
        "open_wait_ms": OPEN_WAIT_S * 1000,
        "open_wait_multiplier": 2,
        "half_open_probes": PROBES,
    },
}
DOWN = "flaky"
UP = "steady"


async def _pair(standins: Callable[..., Any]) -> tuple[StandinServer, StandinServer]:
    return await standins("openai"), await standins("anthropic")


def _config(flaky: StandinServer, steady: StandinServer) -> str:
    return config_yaml(
        {"default": [standin_deployment(flaky, DOWN), standin_deployment(steady, UP)]},
        **POLICIES,
    )


async def _trip(router: RouterUnderTest, flaky: StandinServer) -> list[llm_pb2.CompleteResponse]:
    """Take `flaky` down and call until its breaker opens; every call must still succeed."""
    await flaky.go_down()
    replies = []
    for _ in range(20):
        replies.append(await router.complete())
        if (await router.status())[DOWN].breaker_state == llm_pb2.BREAKER_STATE_OPEN:
            return replies
    raise AssertionError("the breaker never opened")


async def test_a_deployment_refusing_connections_costs_callers_nothing_and_gets_no_calls_once_open(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    flaky, steady = await _pair(standins)
    router = await start_router(_config(flaky, steady))

    replies = await _trip(router, flaky)
    failed_attempts = [a for r in replies for a in r.attempts if a.deployment_id == DOWN]
    await flaky.come_up()
    later = [await router.complete() for _ in range(8)]

    assert {r.deployment_id for r in replies + later} == {UP}
    assert len(failed_attempts) == 4  # minimum_calls, all failures
    assert {a.outcome for a in failed_attempts} == {llm_pb2.ATTEMPT_OUTCOME_ERROR}
    assert all(a.deployment_id == UP for r in later for a in r.attempts)
    assert generation_requests(flaky) == 0  # up again, but the breaker is open
    status = (await router.status())[DOWN]
    assert status.breaker_state == llm_pb2.BREAKER_STATE_OPEN
    assert status.breaker_open_remaining.ToTimedelta().total_seconds() == pytest.approx(
        OPEN_WAIT_S, abs=0.01
    )


async def test_half_open_admits_exactly_the_probes_under_500_concurrent_calls_then_closes(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    flaky, steady = await _pair(standins)
    router = await start_router(_config(flaky, steady))
    await _trip(router, flaky)
    await flaky.come_up()
    # The probes hang, so every one of the 500 calls arrives while they are in flight.
    flaky.script(*[Fault.delay(30_000)] * PROBES)
    router.clock.advance(OPEN_WAIT_S + 0.001)

    finished = 0
    all_but_probes_done = asyncio.Event()

    async def call() -> llm_pb2.CompleteResponse:
        nonlocal finished
        try:
            return await router.complete(deadline_s=60)
        finally:
            finished += 1
            if finished == 500 - PROBES:
                all_but_probes_done.set()

    calls = [asyncio.create_task(call()) for _ in range(500)]
    async with asyncio.timeout(30):
        await all_but_probes_done.wait()
    probes_seen = generation_requests(flaky)
    # The probes fail (the deployment dies under them): their calls fail over, the breaker
    # opens again, for twice as long.
    await flaky.go_down()
    replies = await asyncio.gather(*calls)

    assert probes_seen == PROBES
    assert generation_requests(flaky) == PROBES
    assert {r.deployment_id for r in replies} == {UP}
    reopened = (await router.status())[DOWN]
    assert reopened.breaker_state == llm_pb2.BREAKER_STATE_OPEN
    assert reopened.breaker_open_remaining.ToTimedelta().total_seconds() == pytest.approx(
        2 * OPEN_WAIT_S, abs=0.01
    )

    # Recovery: after the longer wait, the probes succeed and the breaker closes.
    await flaky.come_up()
    router.clock.advance(2 * OPEN_WAIT_S + 0.001)
    probes_served = 0
    for _ in range(4 * PROBES):
        probes_served += (await router.complete()).deployment_id == DOWN
        if (await router.status())[DOWN].breaker_state == llm_pb2.BREAKER_STATE_CLOSED:
            break
    assert probes_served == PROBES
    assert (await router.status())[DOWN].breaker_state == llm_pb2.BREAKER_STATE_CLOSED
    afterwards = [(await router.complete()).deployment_id for _ in range(10)]
    assert 4 <= afterwards.count(DOWN) <= 6  # back to its 1:1 share, give or take a pick


async def test_a_deployment_that_dies_after_a_run_of_successes_is_cut_off_after_five_failures(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    flaky, steady = await _pair(standins)
    router = await start_router(_config(flaky, steady))
    healthy = [await router.complete() for _ in range(40)]  # 20 successes each in the window

    replies = await _trip(router, flaky)

    assert {r.deployment_id for r in healthy} == {DOWN, UP}
    failed = [a for r in replies for a in r.attempts if a.deployment_id == DOWN]
    assert len(failed) == 5  # consecutive_failures, although the window is 80% successes
    assert {r.deployment_id for r in replies} == {UP}


async def test_a_breaker_opened_by_one_router_is_open_in_another(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    flaky, steady = await _pair(standins)
    first = await start_router(_config(flaky, steady), key_prefix="shared-breakers")
    second = await start_router(_config(flaky, steady), key_prefix="shared-breakers")

    await _trip(first, flaky)
    await flaky.come_up()
    replies = [await second.complete() for _ in range(6)]

    assert {r.deployment_id for r in replies} == {UP}
    assert all(a.deployment_id == UP for r in replies for a in r.attempts)
    assert generation_requests(flaky) == 0
    assert (await second.status())[DOWN].breaker_state == llm_pb2.BREAKER_STATE_OPEN


async def test_reset_breaker_lets_calls_through_again_at_once(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    flaky, steady = await _pair(standins)
    router = await start_router(_config(flaky, steady))
    await _trip(router, flaky)
    await flaky.come_up()

    reset = await router.stub.ResetBreaker(
        llm_pb2.ResetBreakerRequest(deployment_id=DOWN), metadata=router.operator
    )
    served = [(await router.complete()).deployment_id for _ in range(4)]

    assert reset.deployment.breaker_state == llm_pb2.BREAKER_STATE_CLOSED
    assert reset.deployment.window_calls == 0
    assert served.count(DOWN) == 2


async def test_a_429_with_retry_after_cools_the_deployment_down_for_that_long(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    flaky, steady = await _pair(standins)
    router = await start_router(_config(flaky, steady))
    flaky.script(Fault.rate_limited(retry_after_s=30))

    first = await router.complete()
    cooling = [await router.complete() for _ in range(4)]
    status = (await router.status())[DOWN]
    router.clock.advance(29.9)
    still_cooling = [await router.complete() for _ in range(4)]
    router.clock.advance(0.2)
    warm = [(await router.complete()).deployment_id for _ in range(4)]

    assert [(a.deployment_id, a.outcome) for a in first.attempts] == [
        (DOWN, llm_pb2.ATTEMPT_OUTCOME_RATE_LIMITED),
        (UP, llm_pb2.ATTEMPT_OUTCOME_SUCCESS),
    ]
    assert {r.deployment_id for r in cooling + still_cooling} == {UP}
    assert status.cooldown_remaining.ToTimedelta().total_seconds() == pytest.approx(30, abs=0.01)
    # A 429 is not a failure: the breaker stays closed and its window clean.
    assert (status.breaker_state, status.window_failures) == (llm_pb2.BREAKER_STATE_CLOSED, 0)
    assert warm.count(DOWN) == 2
    assert generation_requests(flaky) == 1 + 2


async def test_a_429_on_every_deployment_tells_the_caller_when_to_retry(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    only = await standins("openai")
    router = await start_router(
        config_yaml({"default": [standin_deployment(only, "only")]}, **POLICIES)
    )
    only.script(Fault.rate_limited(retry_after_s=7))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.complete()

    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rich_status_of(raised.value)
    assert status is not None
    retry_info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry_info)
    assert retry_info.retry_delay.ToTimedelta().total_seconds() == pytest.approx(7, abs=0.01)
    assert generation_requests(only) == 1
