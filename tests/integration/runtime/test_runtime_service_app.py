"""A ServiceApp serves a real gRPC service with health, reflection, metrics and request ids."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from runtime_test_support import (
    ECHO_SERVICE,
    TEST_SETTINGS,
    AccessLog,
    ChannelTo,
    EchoModules,
    StartApp,
    free_port,
)

from switchboard_runtime import ServiceApp, StartupError

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _log_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


async def test_health_reports_serving_for_the_server_and_each_service(
    start_app: StartApp, channel_to: ChannelTo
) -> None:
    app = await start_app()
    health = health_pb2_grpc.HealthStub(channel_to(app.bound_port))

    overall = await health.Check(health_pb2.HealthCheckRequest(service=""))
    echo = await health.Check(health_pb2.HealthCheckRequest(service=ECHO_SERVICE))

    assert (overall.status, echo.status) == (SERVING, SERVING)


async def test_a_stopped_app_no_longer_answers_health_checks(
    start_app: StartApp, channel_to: ChannelTo
) -> None:
    app = await start_app()
    health = health_pb2_grpc.HealthStub(channel_to(app.bound_port))
    await health.Check(health_pb2.HealthCheckRequest(service=""))

    await app.stop()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_grpcurl_lists_the_services_through_reflection(start_app: StartApp) -> None:
    app = await start_app()
    grpcurl = Path(sys.executable).parent / "grpcurl"

    listing = await asyncio.to_thread(
        subprocess.run,
        [str(grpcurl), "-plaintext", f"127.0.0.1:{app.bound_port}", "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert listing.stdout.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        ECHO_SERVICE,
    ]


async def test_shutdown_lets_an_in_flight_call_finish_while_refusing_new_ones(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    app = await start_app()
    port = app.bound_port
    stub = echo.pb_grpc.EchoServiceStub(channel_to(port))
    hold = stub.Hold()
    await hold.write(echo.pb.EchoRequest(text="hold"))
    assert (await hold.read()).text == "holding"
    watch = health_pb2_grpc.HealthStub(channel_to(port)).Watch(
        health_pb2.HealthCheckRequest(service=ECHO_SERVICE)
    )
    assert (await watch.read()).status == SERVING

    stopping = asyncio.create_task(app.stop())
    assert (await watch.read()).status == NOT_SERVING
    watch.cancel()  # an open Watch would otherwise hold the drain for the whole grace period

    newcomer = echo.pb_grpc.EchoServiceStub(channel_to(port))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await newcomer.Echo(echo.pb.EchoRequest(text="late"), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert not stopping.done()

    await hold.write(echo.pb.EchoRequest(text="release"))
    assert (await hold.read()).text == "released"
    assert await hold.code() is grpc.StatusCode.OK
    await asyncio.wait_for(stopping, timeout=5)


async def test_the_request_id_is_taken_from_the_caller_echoed_and_seen_by_the_handler(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules
) -> None:
    app = await start_app()
    stub = echo.pb_grpc.EchoServiceStub(channel_to(app.bound_port))

    call = stub.Echo(echo.pb.EchoRequest(text="hi"), metadata=(("x-request-id", "req-7.a_b"),))
    response = await call
    echoed = dict(await call.initial_metadata())

    assert echoed["x-request-id"] == "req-7.a_b"
    assert response.request_id == "req-7.a_b"


@pytest.mark.parametrize(
    "metadata",
    [(), (("x-request-id", 'spaces and {"json": 1}'),), (("x-request-id", "x" * 129),)],
    ids=["absent", "unsafe", "too-long"],
)
async def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(
    start_app: StartApp,
    channel_to: ChannelTo,
    echo: EchoModules,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    app = await start_app()
    stub = echo.pb_grpc.EchoServiceStub(channel_to(app.bound_port))

    call = stub.Echo(echo.pb.EchoRequest(text="hi"), metadata=metadata)
    response = await call

    assert re.fullmatch(r"[0-9a-f]{32}", response.request_id)
    assert dict(await call.initial_metadata())["x-request-id"] == response.request_id


async def test_each_call_writes_one_access_log_line_with_ids(
    start_app: StartApp,
    channel_to: ChannelTo,
    echo: EchoModules,
    access_log: AccessLog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await start_app()
    channel = channel_to(app.bound_port)
    stub = echo.pb_grpc.EchoServiceStub(channel)
    capsys.readouterr()

    response = await stub.Echo(
        echo.pb.EchoRequest(text="hi"), metadata=(("x-request-id", "req-log"),)
    )
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    await access_log(f"/{ECHO_SERVICE}/Echo")

    access = [line for line in _log_lines(capsys.readouterr().out) if "grpc_code" in line]
    assert len(access) == 1, "health checks stay out of the access log"
    (line,) = access
    assert line["method"] == f"/{ECHO_SERVICE}/Echo"
    assert line["grpc_code"] == "OK"
    assert line["grpc_type"] == "unary"
    assert line["duration_ms"] >= 0
    assert line["peer"].startswith("ipv")
    assert line["request_id"] == "req-log"
    assert line["trace_id"] == response.trace_id
    assert line["service"] == "echo"


async def test_an_unexpected_error_is_internal_for_the_client_and_one_error_line_in_the_log(
    start_app: StartApp,
    channel_to: ChannelTo,
    echo: EchoModules,
    access_log: AccessLog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await start_app()
    stub = echo.pb_grpc.EchoServiceStub(channel_to(app.bound_port))
    capsys.readouterr()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Explode(echo.pb.EchoRequest(text="boom"))
    await access_log(f"/{ECHO_SERVICE}/Explode")

    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert raised.value.details() == "internal error"
    captured = capsys.readouterr()
    lines = _log_lines(captured.out)
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["error_type"] == "RuntimeError"
    assert error["method"] == f"/{ECHO_SERVICE}/Explode"
    (access,) = [line for line in lines if "grpc_code" in line]
    assert access["grpc_code"] == "Internal"
    assert "Traceback" not in captured.out + captured.err


async def test_metrics_endpoint_counts_handled_calls_by_code_including_health_checks(
    start_app: StartApp, channel_to: ChannelTo, echo: EchoModules, access_log: AccessLog
) -> None:
    app = await start_app(metrics_port=free_port(), metrics_host="127.0.0.1")
    channel = channel_to(app.bound_port)
    stub = echo.pb_grpc.EchoServiceStub(channel)

    def handled(exposition: str, service: str, method: str, code: str) -> float:
        wanted = {
            "grpc_service": service,
            "grpc_method": method,
            "grpc_type": "unary",
            "grpc_code": code,
        }
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                if sample.name == "grpc_server_handled_total" and sample.labels == wanted:
                    return sample.value
        return 0.0

    async def scrape() -> str:
        url = f"http://127.0.0.1:{app.metrics_port}/metrics"
        body: bytes = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        return body.decode()

    before = await scrape()
    await stub.Echo(echo.pb.EchoRequest(text="one"))
    await stub.Echo(echo.pb.EchoRequest(text="two"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Echo(echo.pb.EchoRequest(text=""))
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    for _ in range(3):  # metrics are recorded with the access line, after the caller's answer
        await access_log(f"/{ECHO_SERVICE}/Echo")
    after = await scrape()

    def delta(service: str, method: str, code: str) -> float:
        return handled(after, service, method, code) - handled(before, service, method, code)

    assert delta(ECHO_SERVICE, "Echo", "OK") == 2
    assert delta(ECHO_SERVICE, "Echo", "InvalidArgument") == 1
    assert delta("grpc.health.v1.Health", "Check", "OK") == 1
    assert "grpc_server_handling_seconds_bucket" in after
    assert "grpc_server_started_total" in after


async def test_a_taken_port_is_a_one_line_startup_error(
    start_app: StartApp, echo: EchoModules
) -> None:
    first = await start_app()
    second: ServiceApp = echo.app.build_app(replace(TEST_SETTINGS, grpc_port=first.bound_port))

    with pytest.raises(StartupError) as raised:
        await second.start()

    message = str(raised.value)
    assert message == (
        f"cannot listen on 127.0.0.1:{first.bound_port}: "
        "the port is taken or the address is not local"
    )
