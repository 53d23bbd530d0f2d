"""Prometheus metrics: the shared gRPC server metrics and the HTTP endpoint that exposes them.

Metric names and labels follow go-grpc-prometheus, so the usual gRPC dashboards and alerts work
unchanged; `grpc_code` values are spelled as Go spells them (`OK`, `InvalidArgument`, ...) for
the same reason. Metrics live in prometheus_client's default registry, which is process-wide.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Final
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

__all__ = [
    "GRPC_SERVER_HANDLED",
    "GRPC_SERVER_HANDLING_SECONDS",
    "GRPC_SERVER_STARTED",
    "MetricsEndpoint",
    "go_code_name",
]

_LABELS: Final = ("grpc_service", "grpc_method", "grpc_type")

GRPC_SERVER_STARTED: Final = Counter(
    "grpc_server_started_total", "RPCs started on the server.", _LABELS
)
GRPC_SERVER_HANDLED: Final = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, regardless of success or failure.",
    (*_LABELS, "grpc_code"),
)
GRPC_SERVER_HANDLING_SECONDS: Final = Histogram(
    "grpc_server_handling_seconds",
    "Response latency (seconds) of gRPC calls handled by the server.",
    _LABELS,
)

# grpc.StatusCode names in the CamelCase of Go's codes.Code.String().
_GO_CODE_NAMES: Final = {
    code: "Canceled"
    if code is grpc.StatusCode.CANCELLED
    else "".join(part.capitalize() for part in code.name.split("_"))
    for code in grpc.StatusCode
}
_GO_CODE_NAMES[grpc.StatusCode.OK] = "OK"


def go_code_name(code: grpc.StatusCode) -> str:
    """The status code as go-grpc-prometheus labels it, e.g. `InvalidArgument`."""
    return _GO_CODE_NAMES[code]


class MetricsEndpoint:
    """prometheus_client's HTTP server on its own thread, started and stopped from asyncio."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @classmethod
    async def start(
        cls, host: str, port: int, *, registry: CollectorRegistry = REGISTRY
    ) -> MetricsEndpoint:
        """Listen on host:port (port 0 picks a free one); raises OSError if it cannot bind."""
        server, thread = start_http_server(port, addr=host, registry=registry)
        return cls(server, thread)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    async def stop(self) -> None:
        # shutdown() blocks until the serving thread notices (up to its 0.5 s poll interval),
        # so it runs off the event loop.
        await asyncio.to_thread(self._server.shutdown)
        self._server.server_close()
        await asyncio.to_thread(self._thread.join)
