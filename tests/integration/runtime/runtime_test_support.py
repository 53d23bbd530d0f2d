"""Types and helpers shared by the runtime integration tests and their conftest."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType

import grpc.aio

from switchboard_runtime import ServiceApp, ServiceSettings

ECHO_SERVICE = "switchboard.runtimetest.v1.EchoService"

#: Settings of an in-process test app: loopback only, free port, no metrics endpoint.
TEST_SETTINGS = ServiceSettings(
    grpc_host="127.0.0.1",
    grpc_port=0,
    metrics_port=0,
    shutdown_grace_seconds=5.0,
    log_level="INFO",
    # Spans without a collector: the tests check trace ids in logs and across hops.
    tracing=True,
)

StartApp = Callable[..., Awaitable[ServiceApp]]
#: `await access_log("/pkg.Service/Method")`: the next access log record of that method.
AccessLog = Callable[[str], Awaitable[logging.LogRecord]]
ChannelTo = Callable[[int], grpc.aio.Channel]


@dataclass(frozen=True)
class EchoModules:
    """The echo test service: generated code, the app module, and how a subprocess finds them."""

    pb: ModuleType
    pb_grpc: ModuleType
    app: ModuleType
    python_path: str
    """PYTHONPATH that lets a subprocess import the generated code and `runtime_echo_app`."""


def free_port() -> int:
    """A TCP port nobody listens on right now (for servers that cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
