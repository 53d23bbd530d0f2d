"""wrap_handler runs interceptor code around all four kinds of call on a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import wrappers_pb2

from switchboard_runtime.interceptors import CallInfo, wrap_handler

StringValue = wrappers_pb2.StringValue
Context = grpc.aio.ServicerContext[Any, Any]
ServeFn = Callable[..., AbstractAsyncContextManager[grpc.aio.Channel]]
CODECS: dict[str, Any] = {
    "request_deserializer": StringValue.FromString,
    "response_serializer": StringValue.SerializeToString,
}


class Recorder(grpc.aio.ServerInterceptor):
    """Records what happens around each call, and rejects request messages saying "bad"."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.exited = asyncio.Event()

    @asynccontextmanager
    async def around(self, call: CallInfo, context: Context) -> AsyncIterator[None]:
        self.events.append(f"enter {call.kind} {call.service}/{call.name}")
        try:
            yield
        finally:
            self.events.append(f"exit {call.kind}")
            self.exited.set()

    async def check(self, request: StringValue, context: Context) -> None:
        self.events.append(f"check {request.value}")
        if request.value == "bad":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad message")

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        return wrap_handler(
            handler, CallInfo.of(details, handler), around=self.around, check_request=self.check
        )


def _handlers(recorder: Recorder) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    async def unary(request: StringValue, context: Context) -> StringValue:
        recorder.events.append("handler")
        return StringValue(value=request.value.upper())

    async def server_stream(request: StringValue, context: Context) -> AsyncIterator[StringValue]:
        try:
            for letter in request.value:
                recorder.events.append(f"yield {letter}")
                yield StringValue(value=letter)
        finally:
            recorder.events.append("handler cleanup")

    async def client_stream(requests: AsyncIterator[StringValue], context: Context) -> StringValue:
        seen = [request.value async for request in requests]
        recorder.events.append(f"handler saw {seen}")
        return StringValue(value="+".join(seen))

    async def bidi_stream(
        requests: AsyncIterator[StringValue], context: Context
    ) -> AsyncIterator[StringValue]:
        async for request in requests:
            yield StringValue(value=request.value * 2)

    return {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, **CODECS),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, **CODECS),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, **CODECS),
        "BidiStream": grpc.stream_stream_rpc_method_handler(bidi_stream, **CODECS),
    }


def _stub(channel: grpc.aio.Channel, kind: str, method: str) -> Any:
    factory = getattr(channel, kind)
    return factory(
        f"/test.v1.TestService/{method}",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )


async def _messages(*values: str) -> AsyncIterator[StringValue]:
    for value in values:
        yield StringValue(value=value)


async def test_around_encloses_each_kind_of_call_and_checks_every_request(serve: ServeFn) -> None:
    recorder = Recorder()
    async with serve(_handlers(recorder), interceptors=[recorder]) as channel:
        unary = await _stub(channel, "unary_unary", "Unary")(StringValue(value="hi"))
        streamed = [
            r.value
            async for r in _stub(channel, "unary_stream", "ServerStream")(StringValue(value="ab"))
        ]
        joined = await _stub(channel, "stream_unary", "ClientStream")(_messages("x", "y"))
        doubled = [
            r.value
            async for r in _stub(channel, "stream_stream", "BidiStream")(_messages("p", "q"))
        ]

    assert (unary.value, streamed, joined.value, doubled) == ("HI", ["a", "b"], "x+y", ["pp", "qq"])
    assert recorder.events == [
        "enter unary test.v1.TestService/Unary",
        "check hi",
        "handler",
        "exit unary",
        "enter server_stream test.v1.TestService/ServerStream",
        "check ab",
        "yield a",
        "yield b",
        "handler cleanup",
        "exit server_stream",
        "enter client_stream test.v1.TestService/ClientStream",
        "check x",
        "check y",
        "handler saw ['x', 'y']",
        "exit client_stream",
        "enter bidi_stream test.v1.TestService/BidiStream",
        "check p",
        "check q",
        "exit bidi_stream",
    ]


async def test_a_bad_message_in_a_client_stream_is_rejected_before_the_handler_reads_it(
    serve: ServeFn,
) -> None:
    recorder = Recorder()
    async with serve(_handlers(recorder), interceptors=[recorder]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _stub(channel, "stream_unary", "ClientStream")(_messages("ok", "bad", "late"))
        # The client hears the abort as soon as it is sent; the server side finishes after.
        await recorder.exited.wait()

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "check late" not in recorder.events
    assert not any(event.startswith("handler saw") for event in recorder.events)
    assert recorder.events[-1] == "exit client_stream"


async def test_a_cancelled_stream_runs_the_handler_cleanup_before_leaving_around(
    serve: ServeFn,
) -> None:
    recorder = Recorder()
    async with serve(_handlers(recorder), interceptors=[recorder]) as channel:
        call = _stub(channel, "unary_stream", "ServerStream")(StringValue(value="a" * 10_000))
        async for _ in call:
            call.cancel()
            break
        await recorder.exited.wait()

    assert recorder.events[-2:] == ["handler cleanup", "exit server_stream"]


async def test_an_unknown_method_is_still_unimplemented(serve: ServeFn) -> None:
    recorder = Recorder()
    async with serve(_handlers(recorder), interceptors=[recorder]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _stub(channel, "unary_unary", "NoSuchMethod")(StringValue(value="x"))

    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert recorder.events == []
