"""Startup and shutdown hooks, background tasks and SIGTERM on a real service process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import grpc
import grpc.aio
import pytest
from runtime_test_support import TEST_SETTINGS, ChannelTo, EchoModules

from switchboard_runtime import ServiceApp, StartupError


def _app_with_hooks(events: list[str], *, failing_startup: str | None = None) -> ServiceApp:
    app = ServiceApp(name="hooks", settings=TEST_SETTINGS)

    def startup(name: str) -> Any:
        async def hook() -> None:
            if name == failing_startup:
                raise ConnectionRefusedError(f"{name} is down")
            events.append(f"open {name}")

        return hook

    def shutdown(name: str) -> Any:
        async def hook() -> None:
            events.append(f"close {name}")

        return hook

    for name in ("database", "nats", "redis"):
        app.add_startup(startup(name))
        app.add_shutdown(shutdown(name))
    return app


async def test_startups_run_in_order_and_shutdowns_in_reverse() -> None:
    events: list[str] = []
    app = _app_with_hooks(events)

    await app.start()
    await app.stop()

    assert events == [
        "open database",
        "open nats",
        "open redis",
        "close redis",
        "close nats",
        "close database",
    ]


async def test_a_failed_startup_undoes_only_what_was_opened_before_it() -> None:
    events: list[str] = []
    app = _app_with_hooks(events, failing_startup="redis")

    with pytest.raises(StartupError) as raised:
        await app.start()

    assert str(raised.value).endswith("failed: ConnectionRefusedError: redis is down")
    assert events == ["open database", "open nats", "close nats", "close database"]


async def test_background_tasks_are_cancelled_and_awaited_before_shutdown_hooks() -> None:
    events: list[str] = []
    running = asyncio.Event()
    app = ServiceApp(name="background", settings=TEST_SETTINGS)

    async def consume() -> None:
        running.set()
        try:
            await asyncio.Future()  # runs until cancelled
        finally:
            events.append("consumer stopped")

    async def close() -> None:
        events.append("connections closed")

    app.add_shutdown(close)
    app.add_background(consume)
    await app.start()
    await running.wait()
    await app.stop()

    assert events == ["consumer stopped", "connections closed"]


async def test_a_crashed_background_task_stops_the_app_with_exit_code_1() -> None:
    events: list[str] = []
    app = ServiceApp(name="crashing", settings=TEST_SETTINGS)

    async def crash() -> None:
        raise LookupError("stream CONVERSATION not found")

    async def close() -> None:
        events.append("closed")

    app.add_shutdown(close)
    app.add_background(crash)

    exit_code = await asyncio.wait_for(app.run(), timeout=10)

    assert exit_code == 1
    assert events == ["closed"]


async def test_sigterm_drains_an_in_flight_call_and_exits_0(
    echo: EchoModules, channel_to: ChannelTo
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime_echo_app",
        env={
            **os.environ,
            "PYTHONPATH": echo.python_path,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "0",
            "METRICS_PORT": "0",
            "SHUTDOWN_GRACE_SECONDS": "10",
        },
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None

    async def next_log(msg: str) -> dict[str, Any]:
        while line := await asyncio.wait_for(process.stdout.readline(), timeout=15):
            entry: dict[str, Any] = json.loads(line)
            if entry["msg"] == msg:
                return entry
        raise AssertionError(f"the service exited before logging {msg!r}")

    try:
        serving = await next_log("serving")
        stub = echo.pb_grpc.EchoServiceStub(channel_to(serving["grpc_port"]))
        hold = stub.Hold()
        await hold.write(echo.pb.EchoRequest(text="hold"))
        assert (await hold.read()).text == "holding"

        process.send_signal(signal.SIGTERM)
        await next_log("shutting down")
        await hold.write(echo.pb.EchoRequest(text="release"))
        assert (await hold.read()).text == "released"
        assert await hold.code() is grpc.StatusCode.OK

        stopped = await next_log("stopped")
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
        assert stopped["exit_code"] == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_taken_port_makes_the_process_exit_1_with_one_error_line(
    echo: EchoModules,
) -> None:
    blocker = ServiceApp(name="blocker", settings=TEST_SETTINGS)
    await blocker.start()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime_echo_app",
            env={
                **os.environ,
                "PYTHONPATH": echo.python_path,
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(blocker.bound_port),
                "METRICS_PORT": "0",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        await blocker.stop()

    errors = [json.loads(line) for line in stdout.splitlines() if b'"ERROR"' in line]
    assert process.returncode == 1
    assert [error["msg"] for error in errors] == [
        f"cannot start: cannot listen on 127.0.0.1:{blocker.bound_port}: "
        "the port is taken or the address is not local"
    ]
