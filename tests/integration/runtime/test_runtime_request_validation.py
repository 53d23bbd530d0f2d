"""Requests breaking their buf.validate rules are rejected with field violations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status
from runtime_test_support import ChannelTo, EchoModules, StartApp


async def _echo_error(stub: Any, request: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Echo(request)
    return raised.value


def _bad_request(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def test_an_invalid_request_gets_invalid_argument_naming_the_field(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    app = await start_app()
    stub = echo.pb_grpc.EchoServiceStub(channel_to(app.bound_port))

    error = await _echo_error(stub, echo.pb.EchoRequest(text=""))

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "invalid request: text: must be at least 1 characters"
    assert _bad_request(error) == [("text", "must be at least 1 characters")]


async def test_violations_in_nested_repeated_fields_use_dotted_paths(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    app = await start_app()
    stub = echo.pb_grpc.EchoServiceStub(channel_to(app.bound_port))
    notes = [echo.pb.Note(content="ok"), echo.pb.Note(content="far too long")]

    error = await _echo_error(stub, echo.pb.EchoRequest(text="", notes=notes))

    assert error.details() == "invalid request: text: must be at least 1 characters (and 1 more)"
    assert _bad_request(error) == [
        ("text", "must be at least 1 characters"),
        ("notes[1].content", "must be at most 5 characters"),
    ]


async def test_a_valid_request_reaches_the_handler(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    app = await start_app()
    stub = echo.pb_grpc.EchoServiceStub(channel_to(app.bound_port))

    response = await stub.Echo(
        echo.pb.EchoRequest(text="fine", notes=[echo.pb.Note(content="short")])
    )

    assert response.text == "fine"


async def test_every_message_of_a_client_stream_is_validated(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    app = await start_app()
    stub = echo.pb_grpc.EchoServiceStub(channel_to(app.bound_port))

    async def messages(*texts: str) -> AsyncIterator[Any]:
        for text in texts:
            yield echo.pb.EchoRequest(text=text)

    assert (await stub.Collect(messages("a", "b"))).text == "a+b"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Collect(messages("a", "", "c"))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_request(raised.value) == [("text", "must be at least 1 characters")]
