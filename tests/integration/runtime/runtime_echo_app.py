"""A tiny echo service on the runtime library, run in-process or as a subprocess by the tests.

Needs the code generated from runtime_echo_service.proto on sys.path (the `echo` fixture does that;
a subprocess gets it through PYTHONPATH). As a program it reads the usual service settings
from the environment: `GRPC_PORT=0 python runtime_echo_app.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
import runtime_echo_service_pb2 as pb
import runtime_echo_service_pb2_grpc as pb_grpc
from opentelemetry import trace

from switchboard_runtime import (
    ServiceApp,
    ServiceSettings,
    create_channel,
    remaining_time,
    request_id_var,
    settings_or_exit,
)

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE = pb.DESCRIPTOR.services_by_name["EchoService"]


class EchoServicer(pb_grpc.EchoServiceServicer):
    def __init__(self, downstream: str | None = None) -> None:
        self._downstream = downstream
        self._channel: grpc.aio.Channel | None = None

    async def connect(self) -> None:
        if self._downstream is not None:
            self._channel = create_channel(self._downstream)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def Echo(self, request: pb.EchoRequest, context: Context) -> pb.EchoResponse:
        if request.text == "relay" and self._channel is not None:
            stub = pb_grpc.EchoServiceStub(self._channel)
            downstream: pb.EchoResponse = await stub.Echo(pb.EchoRequest(text="relayed"))
            return downstream
        remaining = remaining_time()
        return pb.EchoResponse(
            text=request.text,
            request_id=request_id_var.get() or "",
            trace_id=trace.format_trace_id(trace.get_current_span().get_span_context().trace_id),
            remaining_seconds=-1.0 if remaining is None else remaining,
        )

    async def Explode(self, request: pb.EchoRequest, context: Context) -> pb.EchoResponse:
        raise RuntimeError("connection to postgresql://app:hunter2@db failed")

    async def Hold(
        self, requests: AsyncIterator[pb.EchoRequest], context: Context
    ) -> AsyncIterator[pb.EchoResponse]:
        async for request in requests:
            if request.text == "release":
                yield pb.EchoResponse(text="released")
                return
            yield pb.EchoResponse(text="holding")

    async def Collect(
        self, requests: AsyncIterator[pb.EchoRequest], context: Context
    ) -> pb.EchoResponse:
        texts = [request.text async for request in requests]
        return pb.EchoResponse(text="+".join(texts))


def build_app(settings: ServiceSettings, *, downstream: str | None = None) -> ServiceApp:
    app = ServiceApp(name="echo", settings=settings)
    servicer = EchoServicer(downstream)
    app.add_service(pb_grpc.add_EchoServiceServicer_to_server, servicer, SERVICE)
    app.add_startup(servicer.connect)
    app.add_shutdown(servicer.close)
    return app


if __name__ == "__main__":
    build_app(settings_or_exit(ServiceSettings, service="echo")).run_forever()
