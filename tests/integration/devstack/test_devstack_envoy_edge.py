"""The generated Envoy edge config, run by a real Envoy in front of a real grpc.aio server."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from devstack_echo import ECHO_SERVICE, EchoProtos
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from switchboard_devstack.envoy_config import build_config, origin_regex, write_config
from switchboard_devstack.envoy_engine import EnvoyEngine, validate_config
from switchboard_devstack.errors import EnvoyConfigError
from switchboard_devstack.processes import free_port

BODY_LIMIT = 2048
ALLOWED_ORIGIN = "http://localhost:5173"


@dataclass(frozen=True)
class EchoServer:
    port: int
    # Set by a test to let a held stream continue (see EchoStream below).
    release: asyncio.Event


@dataclass(frozen=True)
class Edge:
    engine: EnvoyEngine
    port: int


def _servicer(protos: EchoProtos, release: asyncio.Event) -> Any:
    class Echo(protos.pb2_grpc.EchoServiceServicer):  # type: ignore[misc]
        async def Echo(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if request.message_text == "slow":
                await asyncio.sleep(30)
            return protos.pb2.EchoResponse(message_text=request.message_text)

        async def EchoStream(
            self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            for number in range(1, request.repeat_count + 1):
                yield protos.pb2.EchoStreamResponse(
                    message_text=request.message_text, sequence_number=number
                )
                # "hold" pauses after the first message, proving it left Envoy unbuffered.
                if request.message_text == "hold" and number == 1:
                    await release.wait()

    return Echo()


@pytest.fixture(scope="module")
async def echo_server(echo_protos: EchoProtos) -> AsyncIterator[EchoServer]:
    release = asyncio.Event()
    server = grpc.aio.server()
    echo_protos.pb2_grpc.add_EchoServiceServicer_to_server(_servicer(echo_protos, release), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    yield EchoServer(port=port, release=release)
    await server.stop(None)


def _start_edge(
    directory: Path, descriptor: Path, *, gateway_port: int, connectors_port: int, **options: Any
) -> Edge:
    port, admin_port = free_port(), free_port()
    config = write_config(
        directory / "envoy.yaml",
        build_config(
            descriptor_path=descriptor,
            services=[ECHO_SERVICE],
            gateway_address=f"127.0.0.1:{gateway_port}",
            connectors_address=f"127.0.0.1:{connectors_port}",
            listen_address="127.0.0.1",
            listen_port=port,
            admin_port=admin_port,
            max_request_bytes=BODY_LIMIT,
            **options,
        ),
    )
    engine = EnvoyEngine(config, admin_port=admin_port, log_path=directory / "envoy.log")
    return Edge(engine=engine.start(), port=port)


@pytest.fixture(scope="module")
def edge(
    echo_server: EchoServer, echo_protos: EchoProtos, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    # The gateway is the echo server; connectors is a port nobody listens on.
    started = _start_edge(
        tmp_path_factory.mktemp("edge"),
        echo_protos.descriptor,
        gateway_port=echo_server.port,
        connectors_port=free_port(),
    )
    try:
        yield started
    finally:
        started.engine.stop()


Reply = tuple[int, dict[str, str], bytes]


def _http(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str] | None
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


async def http_call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    # http.client blocks; the echo server shares this event loop, so call it from a thread.
    return await asyncio.to_thread(_http, port, method, path, body, headers)


def _json(payload: object) -> tuple[bytes, dict[str, str]]:
    return json.dumps(payload).encode(), {"content-type": "application/json"}


def _grpc_web_frames(body: bytes) -> list[tuple[int, bytes]]:
    frames, offset = [], 0
    while offset < len(body):
        flag, length = body[offset], struct.unpack(">I", body[offset + 1 : offset + 5])[0]
        frames.append((flag, body[offset + 5 : offset + 5 + length]))
        offset += 5 + length
    return frames


# -- the config ----------------------------------------------------------------------------------


def test_generated_config_passes_envoy_validation(echo_protos: EchoProtos, tmp_path: Path) -> None:
    config = build_config(
        descriptor_path=echo_protos.descriptor,
        services=[ECHO_SERVICE],
        gateway_address="127.0.0.1:50051",
        connectors_address="gateway.internal:50055",
    )
    validate_config(write_config(tmp_path / "envoy.json", config))
    names = [f["name"] for f in config["static_resources"]["listeners"][0]["filter_chains"][0]
             ["filters"][0]["typed_config"]["http_filters"]]  # fmt: skip
    assert names == [
        "envoy.filters.http.cors",
        "envoy.filters.http.grpc_web",
        "envoy.filters.http.lua",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]


def test_a_service_missing_from_the_descriptor_is_rejected_with_envoys_message(
    echo_protos: EchoProtos, tmp_path: Path
) -> None:
    config = build_config(
        descriptor_path=echo_protos.descriptor,
        services=["switchboard.devtest.v1.NoSuchService"],
        gateway_address="127.0.0.1:50051",
        connectors_address="127.0.0.1:50055",
    )
    with pytest.raises(EnvoyConfigError, match=r"Could not find 'switchboard\.devtest\.v1\.NoSuch"):
        validate_config(write_config(tmp_path / "envoy.yaml", config))


@pytest.mark.parametrize(
    ("pattern", "origin", "allowed"),
    [
        ("http://localhost:*", "http://localhost:5173", True),
        ("http://localhost:*", "http://localhost", True),
        ("http://localhost:*", "http://localhost.evil.example", False),
        ("https://*.example.com", "https://app.example.com", True),
        ("https://*.example.com", "https://example.com", False),
        ("https://app.example.com", "https://app.example.com.evil", False),
        ("*", "https://anything.test", True),
    ],
)
def test_cors_origin_globs_allow_exactly_what_they_say(
    pattern: str, origin: str, allowed: bool
) -> None:
    assert bool(re.fullmatch(origin_regex(pattern), origin)) is allowed


# -- JSON / REST ---------------------------------------------------------------------------------


async def test_json_post_is_transcoded_and_answered_with_proto_field_names(edge: Edge) -> None:
    body, headers = _json({"message_text": "hello"})
    status, reply_headers, payload = await http_call(edge.port, "POST", "/v1/echo", body, headers)
    assert status == 200
    assert reply_headers["content-type"] == "application/json"
    # Proto names (not lowerCamel) and zero-valued fields printed.
    assert json.loads(payload) == {"message_text": "hello", "sequence_number": 0}


async def test_json_accepts_lower_camel_field_names_too(edge: Edge) -> None:
    body, headers = _json({"messageText": "camel"})
    status, _, payload = await http_call(edge.port, "POST", "/v1/echo", body, headers)
    assert (status, json.loads(payload)["message_text"]) == (200, "camel")


def _server_sent_events(payload: bytes) -> list[object]:
    return [
        json.loads(line.removeprefix(b"data:").strip())
        for line in payload.splitlines()
        if line.startswith(b"data:")
    ]


async def test_server_streaming_json_call_arrives_as_server_sent_events(
    edge: Edge,
) -> None:
    status, _, payload = await http_call(
        edge.port, "GET", "/v1/echo:stream?message_text=tick&repeat_count=3"
    )
    assert status == 200
    assert _server_sent_events(payload) == [
        {"message_text": "tick", "sequence_number": n} for n in (1, 2, 3)
    ]


async def test_streamed_json_messages_reach_the_client_before_the_stream_ends(
    edge: Edge, echo_server: EchoServer
) -> None:
    loop = asyncio.get_running_loop()
    echo_server.release.clear()

    def read_first_then_release() -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=5)
        try:
            connection.request("GET", "/v1/echo:stream?message_text=hold&repeat_count=2")
            response = connection.getresponse()
            received = b""
            # The server holds the stream after message 1: this only returns if Envoy
            # forwarded it without waiting for the end (a timeout here fails the test).
            while b'"sequence_number":1' not in received:
                received += response.read1(4096)
            loop.call_soon_threadsafe(echo_server.release.set)
            return received + response.read()
        finally:
            connection.close()

    payload = await asyncio.to_thread(read_first_then_release)
    events = _server_sent_events(payload)
    assert [m["sequence_number"] for m in events] == [1, 2]  # type: ignore[index]


async def test_unknown_json_field_is_ignored_and_a_wrongly_typed_one_gets_400(
    edge: Edge,
) -> None:
    # Envoy 1.40's transcoder has no option to reject unknown body fields: they are dropped.
    body, headers = _json({"message_text": "kept", "no_such_field": 1})
    status, _, payload = await http_call(edge.port, "POST", "/v1/echo", body, headers)
    assert (status, json.loads(payload)["message_text"]) == (200, "kept")

    body, headers = _json({"message_text": 5})
    status, _, payload = await http_call(edge.port, "POST", "/v1/echo", body, headers)
    assert status == 400
    assert b"message_text" in payload


async def test_malformed_json_gets_400(edge: Edge) -> None:
    status, _, _ = await http_call(
        edge.port, "POST", "/v1/echo", b"{not json", {"content-type": "application/json"}
    )
    assert status == 400


async def test_unknown_query_parameter_gets_400_naming_it(edge: Edge) -> None:
    status, _, payload = await http_call(
        edge.port, "GET", "/v1/echo:stream?message_text=a&repeat_count=1&colour=red"
    )
    assert status == 400
    assert b"colour" in payload


async def test_body_over_the_limit_gets_400_with_a_json_error(edge: Edge) -> None:
    body, headers = _json({"message_text": "x" * (BODY_LIMIT + 1)})
    status, _, payload = await http_call(edge.port, "POST", "/v1/echo", body, headers)
    assert status == 400
    assert json.loads(payload) == {"code": 3, "message": "request body is too large", "details": []}


async def test_unmapped_path_gets_404_from_the_edge(edge: Edge) -> None:
    status, _, payload = await http_call(edge.port, "GET", "/v1/nowhere")
    assert status == 404
    assert b"/v1/nowhere" in payload


async def test_a_callers_grpc_timeout_is_enforced_by_the_edge(edge: Edge) -> None:
    body, headers = _json({"message_text": "slow"})
    status, _, _ = await http_call(
        edge.port, "POST", "/v1/echo", body, {**headers, "grpc-timeout": "200m"}
    )
    assert status == 504


# -- gRPC-Web and gRPC ----------------------------------------------------------------------------


async def test_grpc_web_call_gets_the_message_and_a_trailer_frame_with_status_ok(
    edge: Edge, echo_protos: EchoProtos
) -> None:
    message = echo_protos.pb2.EchoRequest(message_text="from a browser").SerializeToString()
    frame = b"\x00" + struct.pack(">I", len(message)) + message
    status, headers, body = await http_call(
        edge.port,
        "POST",
        f"/{ECHO_SERVICE}/Echo",
        frame,
        {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
    )
    assert status == 200
    assert headers["content-type"] == "application/grpc-web+proto"
    (data_flag, data), (trailer_flag, trailers) = _grpc_web_frames(body)
    assert data_flag == 0x00
    assert echo_protos.pb2.EchoResponse.FromString(data).message_text == "from a browser"
    assert trailer_flag == 0x80
    assert b"grpc-status:0" in trailers


async def test_native_grpc_calls_pass_through_the_edge(edge: Edge, echo_protos: EchoProtos) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{edge.port}") as channel:
        stub = echo_protos.pb2_grpc.EchoServiceStub(channel)
        reply = await stub.Echo(echo_protos.pb2.EchoRequest(message_text="native"), timeout=5)
        stream = stub.EchoStream(
            echo_protos.pb2.EchoStreamRequest(message_text="s", repeat_count=2), timeout=5
        )
        numbers = [message.sequence_number async for message in stream]
        # Health is not in the JSON mapping: gRPC to it must still pass the transcoder.
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.message_text == "native"
    assert numbers == [1, 2]
    assert health.status == health_pb2.HealthCheckResponse.SERVING


# -- CORS -----------------------------------------------------------------------------------------


def _preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web",
    }


async def test_cors_preflight_from_an_allowed_origin_gets_the_allow_headers(edge: Edge) -> None:
    status, headers, _ = await http_call(
        edge.port, "OPTIONS", "/v1/echo", headers=_preflight(ALLOWED_ORIGIN)
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    assert "x-grpc-web" in headers["access-control-allow-headers"]


async def test_cors_preflight_from_another_origin_gets_no_allow_origin(edge: Edge) -> None:
    _, headers, _ = await http_call(
        edge.port, "OPTIONS", "/v1/echo", headers=_preflight("http://evil.example")
    )
    assert "access-control-allow-origin" not in headers


async def test_cross_origin_response_exposes_grpc_status_to_the_browser(edge: Edge) -> None:
    body, headers = _json({"message_text": "cors"})
    _, response_headers, _ = await http_call(
        edge.port, "POST", "/v1/echo", body, {**headers, "origin": ALLOWED_ORIGIN}
    )
    assert response_headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "grpc-status" in response_headers["access-control-expose-headers"]


# -- routing --------------------------------------------------------------------------------------


async def test_a_transcoded_call_is_routed_by_its_grpc_service_not_its_http_path(
    echo_server: EchoServer, echo_protos: EchoProtos, tmp_path: Path
) -> None:
    # Here the echo service plays the connectors' webhook role and the gateway is down: the
    # call only succeeds if Envoy picks the route again after transcoding rewrote :path.
    rerouting = _start_edge(
        tmp_path,
        echo_protos.descriptor,
        gateway_port=free_port(),
        connectors_port=echo_server.port,
        connectors_services=[ECHO_SERVICE],
    )
    try:
        body, headers = _json({"message_text": "to connectors"})
        status, _, payload = await http_call(rerouting.port, "POST", "/v1/echo", body, headers)
    finally:
        rerouting.engine.stop()
    assert (status, json.loads(payload)["message_text"]) == (200, "to connectors")
