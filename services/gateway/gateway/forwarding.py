"""Forwarding of the public API to the services that own it.

The gateway serves every exposed method of the public contracts under its own name and
passes each call on to the owning service: the request (already authenticated, rate-limited
and validated by the interceptors) with the caller's credentials and metadata, the caller's
deadline less a margin, and the trace context (added by the runtime's channels). Responses
and upstream errors come back unchanged, rich error details included; server streams pass
through message by message and are cancelled upstream when the caller goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, NoReturn

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from switchboard_runtime.channels import create_channel
from switchboard_runtime.contract import is_exposed
from switchboard_runtime.datastores import NotOpenError

Context = grpc.aio.ServicerContext[Any, Any]

#: Headers that belong to the hop between the caller and the gateway, not to the call.
_HOP_HEADERS: Final = frozenset(
    {
        "content-type",
        "te",
        "user-agent",
        "host",
        "content-length",
        "accept-encoding",
        "connection",
        "x-request-id",
        "traceparent",
        "tracestate",
    }
)
#: Trailers worth relaying from an upstream error: the rich status and retry advice.
_RELAYED_TRAILERS: Final = frozenset({"grpc-status-details-bin", "retry-after"})
#: Deadline margin: what the gateway keeps for itself to answer in time.
_MARGIN_SECONDS: Final = 0.05
_DEFAULT_UNARY_TIMEOUT: Final = 30.0


def forwarded_metadata(context: Context) -> tuple[tuple[str, str | bytes], ...]:
    """The caller's metadata minus hop-by-hop, gRPC-internal and Envoy-internal entries."""
    return tuple(
        (key, value)
        for key, value in context.invocation_metadata() or ()
        if not key.startswith((":", "grpc-", "x-envoy-")) and key not in _HOP_HEADERS
    )


def upstream_timeout(context: Context, *, streaming: bool) -> float | None:
    """The caller's remaining time less a margin; a default for unary calls without one."""
    remaining = context.time_remaining()
    if remaining is None:
        return None if streaming else _DEFAULT_UNARY_TIMEOUT
    return max(remaining - min(_MARGIN_SECONDS, remaining * 0.1), 0.001)


async def relay_error(context: Context, error: grpc.aio.AioRpcError, upstream: str) -> NoReturn:
    """End the call with the upstream's status; transport failures say only what failed."""
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"the {upstream} service is unavailable; retry"
    elif code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        details = "internal error"
    else:
        details = error.details() or ""
    trailers = tuple(
        (key, value) for key, value in (error.trailing_metadata() or ()) if key in _RELAYED_TRAILERS
    )
    await context.abort(code, details, trailers)
    raise AssertionError("unreachable: abort raises")


class Upstreams:
    """One channel per internal service, opened when the gateway starts."""

    def __init__(self, addresses: Mapping[str, str]) -> None:
        self._addresses = dict(addresses)
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def open(self) -> None:
        self._channels = {
            name: create_channel(address) for name, address in self._addresses.items()
        }

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels = {}

    def channel(self, name: str) -> grpc.aio.Channel:
        channel = self._channels.get(name)
        if channel is None:
            raise NotOpenError(f"no open channel to {name}")
        return channel


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def forwarding_handler(
    service: ServiceDescriptor, upstreams: Upstreams, upstream: str
) -> grpc.GenericRpcHandler:
    """Handlers for every exposed method of `service`, forwarding to `upstream`."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        if is_exposed(method):
            handlers[method.name] = _method_handler(method, upstreams, upstream)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _method_handler(
    method: MethodDescriptor, upstreams: Upstreams, upstream: str
) -> grpc.RpcMethodHandler[Any, Any]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    request_class = GetMessageClass(method.input_type)

    if method.server_streaming:

        async def stream(request: Message, context: Context) -> AsyncIterator[bytes]:
            call: grpc.aio.UnaryStreamCall[Message, bytes] = upstreams.channel(
                upstream
            ).unary_stream(path, request_serializer=_serialize, response_deserializer=None)(
                request,
                metadata=forwarded_metadata(context),
                timeout=upstream_timeout(context, streaming=True),
            )
            try:
                async for response in call:
                    yield response
            except grpc.aio.AioRpcError as error:
                await relay_error(context, error, upstream)
            finally:
                # The caller went away (or the stream ended): stop the upstream call too.
                call.cancel()

        return grpc.unary_stream_rpc_method_handler(
            stream, request_deserializer=request_class.FromString
        )

    async def unary(request: Message, context: Context) -> bytes:
        try:
            response: bytes = await upstreams.channel(upstream).unary_unary(
                path, request_serializer=_serialize, response_deserializer=None
            )(
                request,
                metadata=forwarded_metadata(context),
                timeout=upstream_timeout(context, streaming=False),
            )
        except grpc.aio.AioRpcError as error:
            await relay_error(context, error, upstream)
        return response

    return grpc.unary_unary_rpc_method_handler(unary, request_deserializer=request_class.FromString)
