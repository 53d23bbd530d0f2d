"""The caller's deadline bounds everything: with a 300 ms deadline no upstream attempt (first
try or hedge, unary or stream) is still open after it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from switchboard_standins import Fault, ReplyPolicy, StandinServer
from tests.integration.llm_router.router_support import (
    RouterUnderTest,
    StartRouter,
    config_yaml,
    standin_deployment,
)

DEADLINE_S = 0.3
#: Scheduling noise allowed between the router closing a connection and the stand-in
#: noticing it on a busy machine; an attempt left running would end seconds later.
NOTICE_S = 0.05


async def _slow_pair(
    start_router: StartRouter, standins: Callable[..., Any]
) -> tuple[RouterUnderTest, StandinServer, StandinServer]:
    first, second = await standins("openai"), await standins("anthropic")
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(first, "first"), standin_deployment(second, "second")]},
            hedging={"enabled": True, "min_delay_ms": 50, "max_delay_ms": 100},
        )
    )
    return router, first, second


async def _records_closed_by(deadline: float, *servers: StandinServer) -> list[tuple[str, bool]]:
    seen = []
    for server in servers:
        async with asyncio.timeout(5):
            await server.wait_idle()
        for record in server.stats().recent:
            assert record.finished_at is not None
            seen.append((record.outcome, record.finished_at <= deadline + NOTICE_S))
    return seen


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_no_upstream_attempt_outlives_a_300_ms_deadline(
    start_router: StartRouter, standins: Callable[..., Any], streaming: bool
) -> None:
    router, first, second = await _slow_pair(start_router, standins)
    slow = Fault.delay(5_000) if not streaming else Fault.delay(0, first_token_ms=5_000)
    first.script(slow)
    second.script(slow)

    started = time.time()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        if streaming:
            await router.stream(deadline_s=DEADLINE_S)
        else:
            await router.complete(deadline_s=DEADLINE_S)

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The first attempt and its hedge both went out, and both were closed in time.
    assert await _records_closed_by(started + DEADLINE_S, first, second) == [
        ("client_closed", True),
        ("client_closed", True),
    ]


async def test_a_stream_still_talking_at_the_deadline_is_closed_by_it(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    router, first, _second = await _slow_pair(start_router, standins)
    first.set_reply(ReplyPolicy(filler_tokens=100))
    first.script(Fault.delay(0, inter_token_ms=20))

    received: list[Any] = []
    started = time.time()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.stream(deadline_s=DEADLINE_S, received=received)

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 0 < len(received) < 100
    assert await _records_closed_by(started + DEADLINE_S, first) == [("client_closed", True)]
