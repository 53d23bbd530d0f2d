"""Hedged requests: a slow attempt (or a slow first token) gets a twin on another deployment
after the hedge delay; the first to answer wins and the loser's connection is closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from switchboard.llm.v1 import llm_pb2
from switchboard_standins import Fault, StandinServer
from tests.integration.llm_router.router_support import (
    StartRouter,
    config_yaml,
    generation_requests,
    standin_deployment,
)

HEDGING = {"enabled": True, "min_delay_ms": 20, "max_delay_ms": 100, "min_samples": 20}
CANCELLED = llm_pb2.ATTEMPT_OUTCOME_CANCELLED
SUCCESS = llm_pb2.ATTEMPT_OUTCOME_SUCCESS


async def _loser_record_outcome(server: StandinServer) -> str:
    record = server.stats().recent[0]
    async with asyncio.timeout(5):
        finished = await server.wait_finished(record.id)
    return finished.outcome


async def test_a_slow_unary_attempt_loses_to_its_hedge_and_is_closed(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    slow, fast = await standins("openai"), await standins("anthropic")
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(slow, "slow"), standin_deployment(fast, "fast")]},
            hedging=HEDGING,
        )
    )
    slow.script(Fault.delay(10_000))

    reply = await router.complete()

    assert reply.deployment_id == "fast"
    assert [(a.deployment_id, a.outcome, a.hedge) for a in reply.attempts] == [
        ("slow", CANCELLED, False),
        ("fast", SUCCESS, True),
    ]
    assert await _loser_record_outcome(slow) == "client_closed"


async def test_a_slow_first_token_triggers_a_hedge_that_wins_the_stream(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    slow, fast = await standins("anthropic"), await standins("openai")
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(slow, "slow"), standin_deployment(fast, "fast")]},
            hedging=HEDGING,
        )
    )
    # Headers at once, then nothing for ten seconds: only a first-token race can see it.
    slow.script(Fault.delay(0, first_token_ms=10_000))

    messages = await router.stream("race me")

    assert "".join(m.delta for m in messages[:-1]) == "Echo: race me"
    summary = messages[-1].summary
    assert summary.deployment_id == "fast"
    assert [(a.deployment_id, a.outcome, a.hedge) for a in summary.attempts] == [
        ("slow", CANCELLED, False),
        ("fast", SUCCESS, True),
    ]
    assert await _loser_record_outcome(slow) == "client_closed"


async def test_a_first_token_timeout_fails_over_without_hedging(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    slow, fast = await standins("openai"), await standins("openai")
    router = await start_router(
        config_yaml(
            {
                "default": [
                    standin_deployment(slow, "slow", first_token_timeout_ms=200),
                    standin_deployment(fast, "fast"),
                ]
            },
            hedging={"enabled": False},
        )
    )
    slow.script(Fault.delay(0, first_token_ms=10_000))

    messages = await router.stream("anyone there")

    summary = messages[-1].summary
    assert summary.deployment_id == "fast"
    assert [(a.deployment_id, a.outcome) for a in summary.attempts] == [
        ("slow", llm_pb2.ATTEMPT_OUTCOME_TIMEOUT),
        ("fast", SUCCESS),
    ]
    assert "first token" in summary.attempts[0].error
    assert await _loser_record_outcome(slow) == "client_closed"


async def test_a_fast_answer_sends_no_hedge(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    first, second = await standins("openai"), await standins("openai")
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(first, "a"), standin_deployment(second, "b")]},
            hedging=HEDGING,
        )
    )

    replies = [await router.complete() for _ in range(10)]

    assert all(len(reply.attempts) == 1 for reply in replies)
    assert generation_requests(first) + generation_requests(second) == 10
