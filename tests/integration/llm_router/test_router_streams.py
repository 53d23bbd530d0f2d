"""Streams: a failure before the first token fails over unseen; a failure after it ends the
call with an error status after the deltas already sent, never a truncated OK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from switchboard.llm.v1 import llm_pb2
from switchboard_standins import Fault, ReplyPolicy, StandinServer
from tests.integration.llm_router.router_support import (
    RouterUnderTest,
    StartRouter,
    config_yaml,
    generation_requests,
    standin_deployment,
)


async def _router(
    start_router: StartRouter, first: StandinServer, second: StandinServer, **first_options: Any
) -> RouterUnderTest:
    return await start_router(
        config_yaml(
            {
                "default": [
                    standin_deployment(first, "first", **first_options),
                    standin_deployment(second, "second"),
                ]
            },
            hedging={"enabled": False},
        )
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_cut_mid_answer_ends_with_an_error_after_the_sent_deltas(
    start_router: StartRouter, standins: Callable[..., Any], kind: str
) -> None:
    first, second = await standins(kind), await standins("openai")
    first.set_reply(ReplyPolicy(filler_tokens=20))
    router = await _router(start_router, first, second)
    first.script(Fault.cut(3))

    received: list[llm_pb2.StreamCompleteResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.stream("tell me a long story", received=received)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "incomplete" in (raised.value.details() or "")
    assert {m.WhichOneof("event") for m in received} == {"delta"}  # and no summary
    assert "".join(m.delta for m in received) == "Echo: tell me"
    assert generation_requests(second) == 0  # no failover once the caller has tokens


async def test_a_stream_stalled_mid_answer_ends_with_an_error_after_the_idle_timeout(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    first, second = await standins("openai"), await standins("openai")
    first.set_reply(ReplyPolicy(filler_tokens=20))
    router = await _router(start_router, first, second, idle_timeout_ms=200)
    first.script(Fault.stall(2))

    received: list[llm_pb2.StreamCompleteResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.stream(received=received)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no token for 0.2 s" in (raised.value.details() or "")
    assert "".join(m.delta for m in received) == "Echo: hello"
    record = first.stats().recent[0]
    async with asyncio.timeout(5):
        assert (await first.wait_finished(record.id)).outcome == "client_closed"


@pytest.mark.parametrize(
    "fault",
    [Fault.cut(0), Fault.error(503), Fault.connection_reset()],
    ids=["cut before the first token", "503", "connection reset"],
)
async def test_a_failure_before_the_first_token_fails_over_unseen(
    start_router: StartRouter, standins: Callable[..., Any], fault: Fault
) -> None:
    first, second = await standins("anthropic"), await standins("openai")
    router = await _router(start_router, first, second)
    first.script(fault)

    messages = await router.stream("still there")

    assert "".join(m.delta for m in messages[:-1]) == "Echo: still there"
    summary = messages[-1].summary
    assert [(a.deployment_id, a.outcome) for a in summary.attempts] == [
        ("first", llm_pb2.ATTEMPT_OUTCOME_ERROR),
        ("second", llm_pb2.ATTEMPT_OUTCOME_SUCCESS),
    ]


async def test_a_client_that_leaves_mid_stream_closes_the_upstream_stream(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    first, second = await standins("openai"), await standins("openai")
    first.set_reply(ReplyPolicy(filler_tokens=50))
    router = await _router(start_router, first, second)
    first.script(Fault.delay(0, inter_token_ms=50))

    call = router.stub.StreamComplete(
        llm_pb2.StreamCompleteRequest(
            params=llm_pb2.CompletionParams(
                model="default",
                messages=[llm_pb2.ChatMessage(role=llm_pb2.CHAT_ROLE_USER, content="go")],
            )
        ),
        metadata=router.user,
        timeout=10,
    )
    async for _ in call:
        break
    call.cancel()

    record = first.stats().recent[0]
    async with asyncio.timeout(5):
        assert (await first.wait_finished(record.id)).outcome == "client_closed"
