"""Rich errors reach a real gRPC client as standard google.rpc details."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import wrappers_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from switchboard_runtime.grpc_errors import (
    abort_resource_exhausted,
    abort_with_field_violations,
    field_violations_of,
    rich_status_of,
)

ServeFn = Callable[..., AbstractAsyncContextManager[grpc.aio.Channel]]
StringValue = wrappers_pb2.StringValue


async def _reject_fields(request: StringValue, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await abort_with_field_violations(
        context,
        [("messages[0].content", "must not be empty"), ("bot_id", "unknown bot")],
    )


async def _rate_limit(request: StringValue, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await abort_resource_exhausted(context, 1.5, "too many messages; slow down")


def _unary(behavior: Any) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=StringValue.FromString,
        response_serializer=StringValue.SerializeToString,
    )


async def _call(channel: grpc.aio.Channel, method: str) -> grpc.aio.AioRpcError:
    stub = channel.unary_unary(
        f"/test.v1.TestService/{method}",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(StringValue(value="x"))
    return raised.value


async def test_field_violations_reach_the_client_as_a_bad_request(serve: ServeFn) -> None:
    async with serve({"Reject": _unary(_reject_fields)}) as channel:
        error = await _call(channel, "Reject")

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "invalid request: messages[0].content: must not be empty (and 1 more)"
    status = rpc_status.from_call(error)  # the stock grpc-status client reads the details
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("messages[0].content", "must not be empty"),
        ("bot_id", "unknown bot"),
    ]
    assert field_violations_of(error) == [
        ("messages[0].content", "must not be empty"),
        ("bot_id", "unknown bot"),
    ]


async def test_resource_exhausted_tells_the_client_when_to_retry(serve: ServeFn) -> None:
    async with serve({"Limit": _unary(_rate_limit)}) as channel:
        error = await _call(channel, "Limit")

    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "too many messages; slow down"
    status = rich_status_of(error)
    assert status is not None
    retry_info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry_info)
    assert retry_info.retry_delay.ToTimedelta().total_seconds() == 1.5
    assert field_violations_of(error) == []
