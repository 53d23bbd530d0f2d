"""The one gRPC server bootstrap every service runs: interceptors, health, reflection, metrics,
startup and shutdown hooks, owned background tasks and graceful shutdown on SIGTERM.

    app = ServiceApp(name="identity", settings=settings)
    app.add_service(add_IdentityServiceServicer_to_server, servicer, descriptor)
    app.add_startup(open_pool)
    app.add_shutdown(close_pool)        # undoes the startup registered before it
    app.add_background(consumer.run)    # cancelled and awaited at shutdown
    app.run_forever()                   # exits 0 after a clean SIGTERM, 1 on failure

Startup hooks run in registration order before the port opens. Shutdown hooks run in reverse
registration order after the server stopped; if a startup hook fails, only the shutdown hooks
registered before it run, so register each shutdown right after the startup it undoes.

On SIGTERM/SIGINT: health turns NOT_SERVING, the server stops accepting calls and lets in-flight
calls finish for `shutdown_grace_seconds`, background tasks are cancelled and awaited, shutdown
hooks run, metrics and traces are flushed. A background task that crashes makes `run()` stop
the app with exit code 1, so the orchestrator restarts it instead of keeping a half-working
process. Tests drive an app in-process with `await app.start()` / `await app.stop()` instead.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider

from switchboard_runtime.interceptors import (
    AccessLogInterceptor,
    DeadlineInterceptor,
    RequestIdInterceptor,
    ValidationInterceptor,
)
from switchboard_runtime.logs import configure_logging, short_error
from switchboard_runtime.metrics import MetricsEndpoint
from switchboard_runtime.settings import ServiceSettings
from switchboard_runtime.tracing import (
    configure_tracing,
    server_interceptor,
    shutdown_tracing,
    tracing_enabled,
)

__all__ = ["GRPC_SERVER_OPTIONS", "ServiceApp", "StartupError"]

logger = logging.getLogger("switchboard.server")

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024

GRPC_SERVER_OPTIONS: Final[tuple[tuple[str, Any], ...]] = (
    # 16 MiB instead of grpc's 4 MiB: long conversation histories and bot prompts travel in
    # one message; media never does (it stays on the platforms and is passed by reference).
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # grpc sets SO_REUSEPORT by default, which lets a second process bind a port already in use
    # and silently steal half its connections; a taken port must be a startup error instead.
    ("grpc.so_reuseport", 0),
    # Ping idle clients so connections to vanished peers (killed pods, dropped NAT entries)
    # are closed instead of held open forever.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    # Accept client keepalive pings every 10 s, even between calls; grpc's default answers
    # pings more frequent than 5 minutes with GOAWAY "too_many_pings".
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)

Hook = Callable[[], Awaitable[None]]
BackgroundFactory = Callable[[], Coroutine[Any, Any, None]]


class StartupError(Exception):
    """The app could not start; the message is one line saying why."""


@dataclass(frozen=True, slots=True)
class _Step:
    kind: Literal["startup", "shutdown"]
    hook: Hook


@dataclass(frozen=True, slots=True)
class _Registration:
    add_fn: Callable[[Any, grpc.aio.Server], None]
    servicer: object
    full_name: str


def _unimplemented_handler(service: ServiceDescriptor) -> grpc.GenericRpcHandler:
    message = f"{service.full_name} is not implemented yet"

    async def unimplemented(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    async def unimplemented_stream(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
        yield b""  # pragma: no cover - makes this an async generator

    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        # Requests stay raw bytes: nothing reads them.
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(unimplemented_stream)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(unimplemented)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _hook_name(hook: Callable[..., object]) -> str:
    name = getattr(hook, "__qualname__", None)
    return name if isinstance(name, str) else repr(hook)


class ServiceApp:
    """A gRPC service process: build it, register services and hooks, then `run_forever()`."""

    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        grpc_options: Sequence[tuple[str, Any]] = (),
        maximum_concurrent_rpcs: int | None = None,
    ) -> None:
        """`extra_interceptors` run after access logging and before request validation (so an
        auth interceptor rejects a caller before its input is examined, and is still logged).
        `grpc_options` add to and override `GRPC_SERVER_OPTIONS`."""
        self.name = name
        self.settings = settings
        self._extra_interceptors = tuple(extra_interceptors)
        self._grpc_options = dict(GRPC_SERVER_OPTIONS) | dict(grpc_options)
        self._maximum_concurrent_rpcs = maximum_concurrent_rpcs
        self._services: list[_Registration] = []
        self._steps: list[_Step] = []
        self._steps_started = 0
        self._backgrounds: list[tuple[str, BackgroundFactory]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._metrics: MetricsEndpoint | None = None
        self._tracer_provider: TracerProvider | None = None
        self._bound_port: int | None = None
        self._state: Literal["new", "starting", "serving", "stopping", "stopped"] = "new"
        self._stop_requested = asyncio.Event()
        self._stop_lock = asyncio.Lock()
        self._exit_code = 0

    # -- registration ---------------------------------------------------------------------

    def add_service(
        self,
        add_fn: Callable[[Any, grpc.aio.Server], None],
        servicer: object,
        service: ServiceDescriptor,
    ) -> None:
        """Serve `servicer` (registered with the generated `add_XServicer_to_server`)."""
        self._require_state("new", "add a service")
        self._services.append(_Registration(add_fn, servicer, service.full_name))

    def add_generic_service(
        self, service: ServiceDescriptor, handler: grpc.GenericRpcHandler
    ) -> None:
        """Serve `service` through a generic handler (a proxy), listed in health and reflection."""
        self._require_state("new", "add a service")
        self._services.append(
            _Registration(
                lambda _, server: server.add_generic_rpc_handlers((handler,)),
                None,
                service.full_name,
            )
        )

    def add_unimplemented(self, service: ServiceDescriptor) -> None:
        """List `service` (health, reflection) whose methods all answer UNIMPLEMENTED.

        For a contract that is published before its implementation: clients can discover and
        describe it, and get a clear status instead of a connection to nothing.
        """
        self.add_generic_service(service, _unimplemented_handler(service))

    def add_startup(self, hook: Hook) -> None:
        """Run `hook` before the port opens (open pools, run migrations)."""
        self._require_state("new", "add a startup hook")
        self._steps.append(_Step("startup", hook))

    def add_shutdown(self, hook: Hook) -> None:
        """Run `hook` after the server stopped (close pools and connections)."""
        self._require_state("new", "add a shutdown hook")
        self._steps.append(_Step("shutdown", hook))

    def add_background(self, factory: BackgroundFactory, *, name: str | None = None) -> None:
        """Run `factory()` as a task owned by the app from serving until shutdown."""
        self._require_state("new", "add a background task")
        self._backgrounds.append((name or _hook_name(factory), factory))

    # -- observation ----------------------------------------------------------------------

    @property
    def bound_port(self) -> int:
        """The gRPC port actually bound (differs from the setting when that is 0)."""
        if self._bound_port is None:
            raise RuntimeError("the app has not started")
        return self._bound_port

    @property
    def metrics_port(self) -> int | None:
        """The Prometheus endpoint's port, or None when it is disabled or not started."""
        return None if self._metrics is None else self._metrics.port

    @property
    def health(self) -> health.aio.HealthServicer:
        """The health servicer, for services that report a lost dependency as NOT_SERVING."""
        return self._health

    # -- lifecycle ------------------------------------------------------------------------

    def run_forever(self) -> NoReturn:
        """Run until SIGTERM/SIGINT and exit the process with the app's exit code."""
        sys.exit(asyncio.run(self.run()))

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT or `stop()`, stop gracefully; return an exit code."""
        try:
            await self.start()
        except StartupError as error:
            logger.error("cannot start: %s", error)
            return 1
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for signum in signals:
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            await self._stop_requested.wait()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            await self.stop()
        return self._exit_code

    async def start(self) -> None:
        """Run startup hooks, open the port and the metrics endpoint, start background tasks.

        Raises StartupError (after undoing whatever had started) if any of it fails.
        """
        self._require_state("new", "start")
        self._state = "starting"
        settings = self.settings
        configure_logging(self.name, settings.log_level, tracebacks=settings.log_tracebacks)
        self._tracer_provider = configure_tracing(
            self.name,
            otlp_endpoint=settings.otel_exporter_otlp_endpoint,
            service_version=settings.service_version,
            enabled=settings.tracing_on,
        )
        logger.info("starting", extra={"settings": settings.redacted()})
        try:
            await self._run_startup_hooks()
            server = self._build_server()
            self._server = server
            address = f"{settings.grpc_host}:{settings.grpc_port}"
            try:
                self._bound_port = server.add_insecure_port(address)
            except RuntimeError:
                raise StartupError(
                    f"cannot listen on {address}: the port is taken or the address is not local"
                ) from None
            if settings.metrics_port:
                self._metrics = await self._start_metrics(settings)
            await self._set_all_serving()
            await server.start()
            self._start_background_tasks()
        except BaseException:
            await self._release(grace=0)
            self._state = "stopped"
            raise
        self._state = "serving"
        logger.info(
            "serving",
            extra={
                "grpc_address": f"{settings.grpc_host}:{self._bound_port}",
                "grpc_port": self._bound_port,
                "metrics_port": self.metrics_port,
                "services": [registration.full_name for registration in self._services],
            },
        )

    async def stop(self) -> None:
        """Stop gracefully: NOT_SERVING, drain in-flight calls, then release everything.

        Safe to call more than once and from several tasks; later calls wait for the first.
        """
        self._stop_requested.set()
        async with self._stop_lock:
            if self._state != "serving":
                return
            self._state = "stopping"
            grace = self.settings.shutdown_grace_seconds
            logger.info("shutting down", extra={"grace_seconds": grace})
            await self._release(grace=grace)
            self._state = "stopped"
            logger.info("stopped", extra={"exit_code": self._exit_code})

    # -- internals ------------------------------------------------------------------------

    def _require_state(self, state: str, action: str) -> None:
        if self._state != state:
            raise RuntimeError(f"cannot {action}: the app is {self._state}")

    def _on_signal(self, signum: int) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        self._stop_requested.set()

    async def _run_startup_hooks(self) -> None:
        for step in self._steps:
            if step.kind == "startup":
                try:
                    await step.hook()
                except Exception as error:
                    raise StartupError(
                        f"startup hook {_hook_name(step.hook)} failed: "
                        f"{type(error).__name__}: {short_error(error)}"
                    ) from error
            self._steps_started += 1

    def _build_server(self) -> grpc.aio.Server:
        tracing = [server_interceptor(self._tracer_provider)] if tracing_enabled() else []
        interceptors: list[grpc.aio.ServerInterceptor] = [
            *tracing,
            RequestIdInterceptor(),
            DeadlineInterceptor(),
            AccessLogInterceptor(),
            *self._extra_interceptors,
            ValidationInterceptor(),
        ]
        server = grpc.aio.server(
            interceptors=interceptors,
            options=list(self._grpc_options.items()),
            maximum_concurrent_rpcs=self._maximum_concurrent_rpcs,
        )
        for registration in self._services:
            registration.add_fn(registration.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [
                *(registration.full_name for registration in self._services),
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        return server

    async def _start_metrics(self, settings: ServiceSettings) -> MetricsEndpoint:
        try:
            return await MetricsEndpoint.start(settings.metrics_host, settings.metrics_port)
        except OSError as error:
            raise StartupError(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
                f"{error.strerror or short_error(error)}"
            ) from None

    async def _set_all_serving(self) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        await self._health.set("", serving)
        for registration in self._services:
            await self._health.set(registration.full_name, serving)

    def _start_background_tasks(self) -> None:
        for name, factory in self._backgrounds:
            task = asyncio.create_task(factory(), name=f"{self.name}:{name}")
            task.add_done_callback(self._on_background_done)
            self._tasks.append(task)

    def _on_background_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            logger.info("background task %s finished", task.get_name())
            return
        logger.error("background task %s failed; stopping", task.get_name(), exc_info=error)
        self._exit_code = 1
        self._stop_requested.set()

    async def _release(self, *, grace: float) -> None:
        """Undo whatever start() did, in reverse order; never raises for a failed step."""
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
        await self._cancel_background_tasks(wait_seconds=max(grace, 1.0))
        await self._run_shutdown_hooks()
        if self._metrics is not None:
            await self._metrics.stop()
            self._metrics = None
        if self._tracer_provider is not None:
            await shutdown_tracing(self._tracer_provider)

    async def _cancel_background_tasks(self, *, wait_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        running = {task for task in self._tasks if not task.done()}
        # The first round lets tasks clean up; later ones cancel stragglers again, because
        # before Python 3.12 asyncio.wait_for (used inside nats-py and elsewhere) returns a
        # result that arrives just as the task is cancelled and drops the cancellation
        # (gh-86296), which leaves the task running and holding its connections.
        round_seconds = 0.5
        while running:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            for task in running:
                task.cancel()
            _, running = await asyncio.wait(running, timeout=min(remaining, round_seconds))
            round_seconds = 0.1
        for task in running:
            logger.error("background task %s ignored cancellation", task.get_name())
            self._exit_code = 1

    async def _run_shutdown_hooks(self) -> None:
        for step in reversed(self._steps[: self._steps_started]):
            if step.kind != "shutdown":
                continue
            try:
                await step.hook()
            except Exception as error:
                logger.error("shutdown hook %s failed", _hook_name(step.hook), exc_info=error)
                self._exit_code = 1
