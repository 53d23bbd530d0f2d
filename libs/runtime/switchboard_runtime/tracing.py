"""OpenTelemetry tracing: the SDK tracer provider and the gRPC server and client interceptors.

An SDK provider is always installed, even without a collector, so every request gets a real
trace id for its log lines and passes it on to the services it calls. Spans are exported over
OTLP/gRPC only when an endpoint is configured.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import grpc
import grpc.aio
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = [
    "client_interceptors",
    "configure_tracing",
    "server_interceptor",
    "shutdown_tracing",
    "tracing_enabled",
]

# Whether this process exports traces. The OpenTelemetry interceptors cost about a fifth of a
# proxied call's CPU, so without a collector to send spans to they are left out, and the
# request id alone ties log lines together across services.
_exporting = False


def tracing_enabled() -> bool:
    """Whether calls create spans (OTEL_EXPORTER_OTLP_ENDPOINT is set, or TRACING is on)."""
    return _exporting


_HEALTH_METHOD_PREFIX: Final = "/grpc.health.v1.Health/"


def configure_tracing(
    service_name: str,
    *,
    otlp_endpoint: str | None,
    service_version: str = "dev",
    enabled: bool | None = None,
) -> TracerProvider:
    """Create the service's tracer provider and make it the global one if none is set yet.

    The global provider can only be set once per process; a second app in the same process
    (tests) keeps using its own provider through the interceptors built from it.
    """
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name, "service.version": service_version})
    )
    global _exporting
    if otlp_endpoint:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    _exporting = bool(otlp_endpoint) if enabled is None else enabled
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def _is_traced(details: grpc.HandlerCallDetails) -> bool:
    # Health probes arrive every few seconds and would bury real traces; their Watch method is
    # also written in the reader/writer style that the OpenTelemetry stream wrapper cannot run.
    return not details.method.startswith(_HEALTH_METHOD_PREFIX)


def server_interceptor(provider: TracerProvider | None = None) -> grpc.aio.ServerInterceptor:
    """The OpenTelemetry aio server interceptor: continues the caller's trace, one span a call."""
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=_is_traced
    )
    return interceptor


def client_interceptors(provider: TracerProvider | None = None) -> list[grpc.aio.ClientInterceptor]:
    """OpenTelemetry aio client interceptors: a span per outbound call, trace context sent on."""
    # The instrumentation package ships no type hints.
    interceptors: list[Any] = aio_client_interceptors(tracer_provider=provider)  # type: ignore[no-untyped-call]
    return list(interceptors)


async def shutdown_tracing(provider: TracerProvider) -> None:
    """Flush buffered spans and stop the exporter.

    Flushing waits on the collector (with the exporter's own timeout), so it runs off the loop.
    """
    await asyncio.to_thread(provider.shutdown)
