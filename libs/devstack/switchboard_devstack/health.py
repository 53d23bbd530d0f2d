"""Readiness of a gRPC service: `grpc.health.v1.Health/Check` answering SERVING."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# A fresh server is probed before it listens; grpc's default reconnect backoff (1 s, growing)
# would then delay readiness by seconds, so retry connections quickly instead.
_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]


class HealthProbe:
    """A reusable probe of one address; `serving()` never raises."""

    def __init__(self, address: str, *, service: str = "", timeout: float = 0.5) -> None:
        self.address = address
        self.service = service
        self.timeout = timeout
        self._channel = grpc.insecure_channel(address, options=_FAST_RECONNECT)
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self.last_error = ""

    def serving(self) -> bool:
        request = health_pb2.HealthCheckRequest(service=self.service)
        try:
            response = self._stub.Check(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            self.last_error = f"{exc.code().name}: {exc.details()}"
            return False
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        self.last_error = status
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self._channel.close()
