"""Bad input gets INVALID_ARGUMENT naming the field, and nothing reaches a provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from switchboard.llm.v1 import llm_pb2
from switchboard_runtime.grpc_errors import field_violations_of
from switchboard_standins import StandinServer
from tests.integration.llm_router.router_support import (
    RouterUnderTest,
    StartRouter,
    config_yaml,
    generation_requests,
    messages,
    standin_deployment,
)

USER = llm_pb2.CHAT_ROLE_USER


@pytest.fixture
async def two_providers(standins: Callable[..., Any]) -> tuple[StandinServer, StandinServer]:
    return await standins("openai"), await standins("anthropic")


@pytest.fixture
async def router(
    start_router: StartRouter, two_providers: tuple[StandinServer, StandinServer]
) -> RouterUnderTest:
    openai_server, anthropic_server = two_providers
    return await start_router(
        config_yaml(
            {
                "default": [
                    standin_deployment(openai_server, "openai-1"),
                    standin_deployment(anthropic_server, "anthropic-1"),
                ]
            }
        )
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "default", "messages": []}, "params.messages"),
        ({"model": "no-such-alias", "messages": messages()}, "params.model"),
        ({"model": "default", "messages": messages(), "max_tokens": -1}, "params.max_tokens"),
        ({"model": "default", "messages": messages(), "temperature": 2.5}, "params.temperature"),
        ({"model": "default", "messages": messages(), "top_p": 0}, "params.top_p"),
        (
            {
                "model": "default",
                "messages": [llm_pb2.ChatMessage(role=llm_pb2.CHAT_ROLE_SYSTEM, content="hi")],
            },
            "params.messages",
        ),
    ],
    ids=[
        "no messages",
        "unknown alias",
        "negative max tokens",
        "temperature out of range",
        "top_p zero",
        "only a system message",
    ],
)
async def test_bad_input_is_invalid_argument_and_sends_nothing_upstream(
    router: RouterUnderTest,
    two_providers: tuple[StandinServer, StandinServer],
    params: dict[str, Any],
    field: str,
) -> None:
    for call in (router.stub.Complete, router.stub.StreamComplete):
        request_type = (
            llm_pb2.CompleteRequest
            if call is router.stub.Complete
            else llm_pb2.StreamCompleteRequest
        )
        request = request_type(params=llm_pb2.CompletionParams(**params))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            reply = call(request, metadata=router.user, timeout=5)
            if call is router.stub.StreamComplete:
                async for _ in reply:
                    pass
            else:
                await reply
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in [path for path, _ in field_violations_of(raised.value)]
    assert [generation_requests(server) for server in two_providers] == [0, 0]


async def test_a_call_without_credentials_is_unauthenticated(router: RouterUnderTest) -> None:
    request = llm_pb2.CompleteRequest(
        params=llm_pb2.CompletionParams(model="default", messages=messages())
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.stub.Complete(request, timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_operations_are_for_services_only(router: RouterUnderTest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.stub.GetRouterStatus(
            llm_pb2.GetRouterStatusRequest(), metadata=router.user, timeout=5
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_ops_call_naming_an_unknown_deployment_is_not_found(
    router: RouterUnderTest,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.stub.ResetBreaker(
            llm_pb2.ResetBreakerRequest(deployment_id="nope"), metadata=router.operator, timeout=5
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_models_names_each_alias_and_its_deployments(router: RouterUnderTest) -> None:
    response = await router.stub.ListModels(
        llm_pb2.ListModelsRequest(), metadata=router.user, timeout=5
    )
    assert [(m.alias, list(m.deployment_ids)) for m in response.models] == [
        ("default", ["openai-1", "anthropic-1"])
    ]
