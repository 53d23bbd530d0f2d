"""Outbound gRPC channels that carry the request id, the trace and the remaining deadline.

Services build every channel with `create_channel`, so calls to other services continue the
trace, keep the caller's `x-request-id`, and never outlive the inbound call's deadline
(a call without its own timeout inherits what is left; a longer timeout is cut to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import grpc
import grpc.aio

from switchboard_runtime.request_context import REQUEST_ID_HEADER, remaining_time, request_id_var
from switchboard_runtime.tracing import client_interceptors, tracing_enabled

__all__ = ["DEFAULT_CHANNEL_OPTIONS", "RequestContextClientInterceptor", "create_channel"]

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024

DEFAULT_CHANNEL_OPTIONS: Final[tuple[tuple[str, Any], ...]] = (
    # Same limit as the servers, so a reply the server may send is one the client accepts.
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Ping idle connections so a peer that vanished (pod killed, NAT dropped) is noticed in
    # seconds rather than at the next call; the servers permit pings this often.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # grpc stops pinging after two pings without data unless told otherwise; an idle
    # connection is exactly the one whose peer may have vanished.
    ("grpc.http2.max_pings_without_data", 0),
)


def _with_request_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    request_id = request_id_var.get()
    if request_id is not None and metadata.get(REQUEST_ID_HEADER) is None:
        metadata.add(REQUEST_ID_HEADER, request_id)
    timeout = details.timeout
    remaining = remaining_time()
    if remaining is not None:
        # A call past its deadline still goes out with a tiny timeout, so it fails
        # DEADLINE_EXCEEDED the normal way instead of being special-cased here.
        remaining = max(remaining, 0.001)
        timeout = remaining if timeout is None else min(timeout, remaining)
    return grpc.aio.ClientCallDetails(
        details.method, timeout, metadata, details.credentials, details.wait_for_ready
    )


class RequestContextClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds `x-request-id` and the inherited deadline to every outbound call."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_request_context(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_request_context(client_call_details), request)

    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_request_context(client_call_details), request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_request_context(client_call_details), request_iterator)


def create_channel(
    target: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """A channel to `target` (host:port) with tracing and request-context propagation.

    `options` are added to (and override) `DEFAULT_CHANNEL_OPTIONS`; `interceptors` run
    inside the built-in ones. Without `credentials` the channel is plaintext, as inside a
    cluster where the mesh or Envoy terminates TLS.
    """
    merged = dict(DEFAULT_CHANNEL_OPTIONS)
    merged.update(options)
    chain: list[grpc.aio.ClientInterceptor] = [
        *(client_interceptors() if tracing_enabled() else []),
        RequestContextClientInterceptor(),
        *interceptors,
    ]
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(merged.items()), interceptors=chain)
    return grpc.aio.secure_channel(
        target, credentials, options=list(merged.items()), interceptors=chain
    )
