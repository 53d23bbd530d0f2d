"""Complete and StreamComplete through the real SDKs: reply, finish reason, usage, the
deployment that answered and the attempts it took."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from switchboard.llm.v1 import llm_pb2
from switchboard_standins import Fault
from tests.integration.llm_router.router_support import (
    StartRouter,
    config_yaml,
    standin_deployment,
)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_complete_answers_with_the_reply_its_usage_and_who_served_it(
    start_router: StartRouter, standins: Callable[..., Any], kind: str
) -> None:
    server = await standins(kind)
    router = await start_router(config_yaml({"default": [standin_deployment(server, "only")]}))

    reply = await router.complete("what is the weather", temperature=0.7, top_p=0.9)

    assert reply.text == "Echo: what is the weather"
    assert reply.finish_reason == llm_pb2.FINISH_REASON_STOP
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 5)
    assert reply.usage.total_tokens == 9
    assert (reply.deployment_id, reply.provider_model) == ("only", server.stats().recent[0].model)
    assert [(a.deployment_id, a.outcome, a.hedge) for a in reply.attempts] == [
        ("only", llm_pb2.ATTEMPT_OUTCOME_SUCCESS, False)
    ]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_sends_the_reply_in_deltas_then_a_summary(
    start_router: StartRouter, standins: Callable[..., Any], kind: str
) -> None:
    server = await standins(kind)
    router = await start_router(config_yaml({"default": [standin_deployment(server, "only")]}))
    server.script(Fault.delay(0, inter_token_ms=20))

    messages = await router.stream("stream this to me please")

    deltas = [m.delta for m in messages[:-1]]
    assert all(m.WhichOneof("event") == "delta" for m in messages[:-1])
    assert "".join(deltas) == "Echo: stream this to me please"
    # Forwarded as they come (deltas that pile up while the caller is busy are merged).
    assert len(deltas) > 1
    summary = messages[-1].summary
    assert summary.finish_reason == llm_pb2.FINISH_REASON_STOP
    assert (summary.usage.prompt_tokens, summary.usage.completion_tokens) == (5, 6)
    assert summary.deployment_id == "only"
    assert [a.outcome for a in summary.attempts] == [llm_pb2.ATTEMPT_OUTCOME_SUCCESS]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_max_tokens_and_stop_sequences_reach_the_provider(
    start_router: StartRouter, standins: Callable[..., Any], kind: str
) -> None:
    server = await standins(kind)
    router = await start_router(config_yaml({"default": [standin_deployment(server, "only")]}))

    cut_short = await router.complete("one two three four", max_tokens=2)
    stopped = await router.stream("one two three four", stop=["three"])

    assert (cut_short.text, cut_short.finish_reason) == ("Echo: one", llm_pb2.FINISH_REASON_LENGTH)
    assert "".join(m.delta for m in stopped[:-1]) == "Echo: one two"
    assert stopped[-1].summary.finish_reason == llm_pb2.FINISH_REASON_STOP


async def test_the_callers_request_id_reaches_the_provider(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    server = await standins("openai")
    router = await start_router(config_yaml({"default": [standin_deployment(server, "only")]}))

    await router.stub.Complete(
        llm_pb2.CompleteRequest(
            params=llm_pb2.CompletionParams(
                model="default",
                messages=[llm_pb2.ChatMessage(role=llm_pb2.CHAT_ROLE_USER, content="hi")],
            )
        ),
        metadata=(*router.user, ("x-request-id", "req-router-test-1")),
        timeout=5,
    )

    assert server.stats().recent[-1].client_request_id == "req-router-test-1"


async def test_the_built_in_mock_configuration_serves_offline(start_router: StartRouter) -> None:
    from llm_router.config import BUILTIN_CONFIG_YAML

    router = await start_router(BUILTIN_CONFIG_YAML)

    reply = await router.complete("are you there", model="mock-fast")
    streamed = await router.stream("are you there", model="default")

    assert reply.text == "Mock reply: are you there"
    assert "".join(m.delta for m in streamed[:-1]).startswith("Mock reply: are you there lorem")
    assert streamed[-1].summary.deployment_id in {"mock-a", "mock-b"}
