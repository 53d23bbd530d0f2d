"""Calls made through create_channel carry the request id, the trace and the deadline."""

from __future__ import annotations

from runtime_test_support import ChannelTo, EchoModules, StartApp


async def test_a_relayed_call_keeps_the_request_id_and_the_trace(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    downstream = await start_app()
    upstream = await start_app(downstream=f"127.0.0.1:{downstream.bound_port}")
    stub = echo.pb_grpc.EchoServiceStub(channel_to(upstream.bound_port))

    call = stub.Echo(echo.pb.EchoRequest(text="relay"), metadata=(("x-request-id", "req-hop"),))
    seen_downstream = await call
    upstream_trace = await stub.Echo(echo.pb.EchoRequest(text="direct"))

    assert seen_downstream.text == "relayed"
    assert seen_downstream.request_id == "req-hop"
    assert len(seen_downstream.trace_id) == 32
    assert seen_downstream.trace_id != upstream_trace.trace_id, "each request is its own trace"


async def test_a_relayed_call_inherits_what_is_left_of_the_callers_deadline(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    downstream = await start_app()
    upstream = await start_app(downstream=f"127.0.0.1:{downstream.bound_port}")
    stub = echo.pb_grpc.EchoServiceStub(channel_to(upstream.bound_port))

    with_deadline = await stub.Echo(echo.pb.EchoRequest(text="relay"), timeout=7)
    without_deadline = await stub.Echo(echo.pb.EchoRequest(text="relay"))

    # grpc rounds a timeout up when it encodes it on the wire, hence the small allowance.
    assert 0 < with_deadline.remaining_seconds < 7.1
    assert without_deadline.remaining_seconds == -1
