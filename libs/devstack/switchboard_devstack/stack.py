"""The supervisor of the local suite: engines, the Envoy edge and the services as children.

`start()` brings up Postgres, Redis and NATS (each unless the config names an external server),
creates one database per service that has one, writes and validates the Envoy config, starts
Envoy and the services, and returns once Envoy is ready and every service answers
`grpc.health.v1.Health/Check` with SERVING.

If any child dies unexpectedly while the stack is up (a service, Envoy or an engine), the stack
stops: the failure is logged with the child's name, exit code and last output lines, everything
else is stopped in reverse order, and `wait()` raises `ServiceDiedError` (so
`python -m switchboard_devstack run` exits non-zero).

`stop()` (also on SIGINT/SIGTERM in the CLI) stops services first with SIGTERM and a grace
period so they drain, then Envoy, NATS, Redis and Postgres, leaving no process behind.

Call `start()` from a long-lived thread (normally the main thread): children get
PR_SET_PDEATHSIG, which the kernel ties to the thread that spawned them.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TextIO

import asyncpg

from switchboard_devstack import postgres_admin
from switchboard_devstack.dev_secrets import DevSecrets, load_or_create_dev_secrets
from switchboard_devstack.envoy_config import build_config, services_in_descriptor, write_config
from switchboard_devstack.envoy_engine import EnvoyEngine, admin_ready, validate_config
from switchboard_devstack.errors import (
    DevstackError,
    EngineStartError,
    EngineStopError,
    ServiceDiedError,
)
from switchboard_devstack.health import HealthProbe
from switchboard_devstack.nats_engine import NatsEngine
from switchboard_devstack.postgres_engine import PostgresEngine, ensure_runtime_dir
from switchboard_devstack.processes import (
    POLL_INTERVAL,
    ManagedProcess,
    child_env,
    free_port,
    port_is_free,
    tail_file,
)
from switchboard_devstack.redis_engine import MAX_UNIX_SOCKET_PATH, RedisEngine, redis_db_url
from switchboard_devstack.stack_config import ServiceDefinition, StackConfig

log = logging.getLogger("switchboard_devstack")

GATEWAY_SERVICE = "switchboard.gateway.v1.GatewayService"


class Stack:
    """The running suite; use as a context manager or call `start()` and `stop()`."""

    def __init__(self, config: StackConfig, *, out: TextIO | None = None) -> None:
        self.config = config
        self.postgres: PostgresEngine | None = None
        self.redis: RedisEngine | None = None
        self.nats: NatsEngine | None = None
        self.envoy: EnvoyEngine | None = None
        self.services: dict[str, ManagedProcess] = {}
        self.server_dsn = config.database_url or ""
        self.redis_url = config.redis_url or ""
        self.nats_url = config.nats_url or ""
        self.database_dsns: dict[str, str] = {}
        self.transcoded_services: list[str] = []
        self.skipped_services: list[str] = []
        self.dev_secrets: DevSecrets | None = None
        self.failure: ServiceDiedError | None = None
        self.stop_errors: list[Exception] = []
        self.startup_seconds = 0.0
        self._out = out if out is not None else sys.stdout
        self._out_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._shutting_down = False
        self._supervisor: threading.Thread | None = None

    # -- public API --------------------------------------------------------------------------

    def start(self) -> Stack:
        """Start everything and wait until it is ready; on any failure stop what was started."""
        began = time.monotonic()
        try:
            self._check_ports()
            self._start_engines()
            self._prepare_databases()
            self._start_envoy()
            self._start_services()
            self._wait_until_serving()
        except BaseException:
            self._shutdown()
            raise
        self.startup_seconds = time.monotonic() - began
        self._supervisor = threading.Thread(
            target=self._supervise, name="devstack-supervisor", daemon=True
        )
        self._supervisor.start()
        return self

    def request_stop(self) -> None:
        """Ask the supervisor to stop the stack; returns at once (safe from signal handlers)."""
        self._wake.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the stack has stopped; raise ServiceDiedError if a child died.

        Raises TimeoutError if it is still running after `timeout` seconds.
        """
        if not self._stopped.wait(timeout):
            raise TimeoutError("the stack is still running")
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        """Stop everything (idempotent). A child's crash is kept in `failure`, not raised."""
        self.request_stop()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join()
        self._shutdown()

    def pids(self) -> dict[str, int]:
        """Pid of every process the stack started (the Postgres entry is its postmaster)."""
        pids = {name: proc.pid for name, proc in self.services.items() if proc.pid is not None}
        for name, engine in (("envoy", self.envoy), ("nats", self.nats), ("redis", self.redis)):
            if engine is not None and engine.process.pid is not None:
                pids[name] = engine.process.pid
        if self.postgres is not None and self.postgres.pid is not None:
            pids["postgres"] = self.postgres.pid
        return pids

    @property
    def edge_url(self) -> str:
        return f"http://localhost:{self.config.envoy_port}"

    def banner(self) -> str:
        """Where to point curl, grpcurl and a browser; printed by `make run` once ready."""
        cfg = self.config
        port = cfg.envoy_port
        direct = ", ".join(f"{s.name} localhost:{s.grpc_port}" for s in cfg.services)
        if GATEWAY_SERVICE in self.transcoded_services:
            rest = f"curl {self.edge_url}/v1/info"
        elif self.transcoded_services:
            rest = f"{self.edge_url}  (JSON for {', '.join(self.transcoded_services)})"
        elif not cfg.descriptor.is_file():
            rest = f"off: {cfg.descriptor} is missing (run `make proto`)"
        else:
            rest = f"off: no public service is in {cfg.descriptor}"
        nats = self.nats_url + (f"  (monitoring {self.nats.monitor_url})" if self.nats else "")
        origins = ", ".join(cfg.cors_allowed_origins)
        lines = [
            f"Switchboard is up ({self.startup_seconds:.1f}s).",
            "",
            f"  REST/JSON    {rest}",
            f"  gRPC         grpcurl -plaintext localhost:{port} list",
            f"               each service directly: {direct}",
            f"  Browser      {self.edge_url}  (JSON and gRPC-Web; CORS allows {origins})",
            f"  Envoy admin  http://127.0.0.1:{cfg.envoy_admin_port}",
            f"  Postgres     {self.server_dsn}",
            f"  Redis        {self.redis_url}",
            f"  NATS         {nats}",
            f"  Data         {cfg.data_dir}  (logs in {cfg.logs_dir})",
            "",
            "Press Ctrl-C to stop everything. Data is kept; delete the data dir to start afresh.",
        ]
        return "\n".join(lines)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start -------------------------------------------------------------------------------

    def _check_ports(self) -> None:
        cfg = self.config
        wanted: list[tuple[str, int, str]] = [
            ("Envoy", cfg.envoy_port, "SWITCHBOARD_ENVOY_PORT"),
            ("Envoy admin", cfg.envoy_admin_port, "SWITCHBOARD_ENVOY_ADMIN_PORT"),
        ]
        if cfg.nats_url is None:
            wanted += [
                ("NATS", cfg.nats_port, "SWITCHBOARD_NATS_PORT"),
                ("NATS monitoring", cfg.nats_monitor_port, "SWITCHBOARD_NATS_MONITOR_PORT"),
            ]
        if cfg.redis_url is None and cfg.redis_port is not None:
            wanted.append(("Redis", cfg.redis_port, "SWITCHBOARD_REDIS_PORT"))
        for service in cfg.services:
            key = f"SWITCHBOARD_{service.env_name}"
            wanted += [
                (service.name, service.grpc_port, f"{key}_PORT"),
                (f"{service.name} metrics", service.metrics_port, f"{key}_METRICS_PORT"),
            ]
        busy = [
            f"{port} ({what}; set {variable})"
            for what, port, variable in wanted
            if not port_is_free(port, cfg.envoy_host if what == "Envoy" else "127.0.0.1")
        ]
        if busy:
            raise DevstackError(
                "ports already in use (is another stack running?): " + ", ".join(busy)
            )

    def _start_engines(self) -> None:
        cfg = self.config
        cfg.logs_dir.mkdir(parents=True, exist_ok=True)
        ensure_runtime_dir(cfg.data_dir / "run")
        # Spawn Redis and NATS first (instant), start Postgres while they boot, then wait.
        if cfg.redis_url is None:
            socket_fits = len(str(cfg.data_dir / "redis" / "redis.sock")) <= MAX_UNIX_SOCKET_PATH
            port = cfg.redis_port if cfg.redis_port is not None or socket_fits else free_port()
            self.redis = RedisEngine(
                cfg.data_dir / "redis",
                port=port,
                unix_socket=socket_fits,
                log_path=cfg.logs_dir / "redis.log",
            )
            self.redis.process.on_exit = self._on_child_exit
            self.redis.spawn()
            self.redis_url = self.redis.url
        if cfg.nats_url is None:
            self.nats = NatsEngine(
                cfg.data_dir / "nats",
                port=cfg.nats_port,
                monitor_port=cfg.nats_monitor_port,
                log_path=cfg.logs_dir / "nats.log",
            )
            self.nats.process.on_exit = self._on_child_exit
            self.nats.spawn()
            self.nats_url = self.nats.url
        if cfg.database_url is None:
            self.postgres = PostgresEngine(
                cfg.data_dir / "postgres", runtime_dir=cfg.data_dir / "run"
            )
            self.postgres.start()
            self.server_dsn = self.postgres.dsn
        if self.redis is not None:
            self.redis.wait_ready()
        if self.nats is not None:
            self.nats.wait_ready()

    def _prepare_databases(self) -> None:
        for service in self.config.services:
            if service.database is None:
                continue
            try:
                dsn = postgres_admin.create_database(self.server_dsn, service.database)
            except (OSError, asyncpg.PostgresError) as exc:
                raise DevstackError(
                    f"could not create database {service.database} on {self.server_dsn}: {exc}"
                ) from exc
            self.database_dsns[service.name] = dsn

    def _start_envoy(self) -> None:
        cfg = self.config
        try:
            gateway, connectors = cfg.service("gateway"), cfg.service("connectors")
        except KeyError as exc:
            raise DevstackError("Envoy routes to services named gateway and connectors") from exc
        descriptor: Path | None = cfg.descriptor
        if descriptor is not None and descriptor.is_file():
            available = services_in_descriptor(descriptor)
            self.transcoded_services = [s for s in cfg.public_services if s in available]
            self.skipped_services = [s for s in cfg.public_services if s not in available]
            if self.skipped_services:
                log.warning(
                    "not transcoded to JSON (absent from %s): %s",
                    descriptor,
                    ", ".join(self.skipped_services),
                )
        else:
            log.warning(
                "no descriptor at %s (run `make proto`): Envoy serves gRPC and gRPC-Web only",
                descriptor,
            )
            self.skipped_services = list(cfg.public_services)
            descriptor = None
        config_path = cfg.data_dir / "envoy" / "envoy.yaml"
        write_config(
            config_path,
            build_config(
                descriptor_path=descriptor,
                services=self.transcoded_services,
                gateway_address=gateway.address,
                connectors_address=connectors.address,
                listen_address=cfg.envoy_host,
                listen_port=cfg.envoy_port,
                admin_port=cfg.envoy_admin_port,
                cors_allowed_origins=cfg.cors_allowed_origins,
                body_check_address=(
                    f"127.0.0.1:{gateway.env['BODY_CHECK_PORT']}"
                    if "BODY_CHECK_PORT" in gateway.env
                    else None
                ),
            ),
        )
        validate_config(config_path)
        self.envoy = EnvoyEngine(
            config_path, admin_port=cfg.envoy_admin_port, log_path=cfg.logs_dir / "envoy.log"
        )
        self.envoy.process.on_exit = self._on_child_exit
        self.envoy.spawn()

    def _service_env(self, service: ServiceDefinition) -> dict[str, str]:
        cfg = self.config
        env = {
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(service.grpc_port),
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": str(service.metrics_port),
            "LOG_LEVEL": cfg.log_level,
            "SERVICE_NAME": service.name,
        }
        env.update({peer.address_env: peer.address for peer in cfg.services})
        if service.database is not None:
            env["DATABASE_URL"] = self.database_dsns[service.name]
        if service.redis_db is not None:
            env["REDIS_URL"] = redis_db_url(self.redis_url, service.redis_db)
        if service.uses_nats:
            env["NATS_URL"] = self.nats_url
        if self.dev_secrets is not None:
            env.update(self.dev_secrets.env_for(service.name))
        env.update(service.env)
        return child_env(env)

    def _start_services(self) -> None:
        cfg = self.config
        # "operator" is for people: its secret gets grpcurl a token for the ops RPCs.
        self.dev_secrets = load_or_create_dev_secrets(
            cfg.data_dir / "dev-secrets.json", [*(s.name for s in cfg.services), "operator"]
        )
        for service in cfg.services:
            process = ManagedProcess(
                service.name,
                service.command,
                env=self._service_env(service),
                cwd=cfg.repo_root,
                log_path=cfg.logs_dir / f"{service.name}.log",
                echo=self._echo if cfg.echo_service_output else None,
                on_exit=self._on_child_exit,
            )
            self.services[service.name] = process
            process.start()

    def _wait_until_serving(self) -> None:
        cfg = self.config
        assert self.envoy is not None
        probes = {s.name: HealthProbe(s.address) for s in cfg.services}
        pending = dict(probes)
        envoy_ready = False
        deadline = time.monotonic() + cfg.ready_timeout
        try:
            while pending or not envoy_ready:
                for name in list(pending):
                    process = self.services[name]
                    if process.returncode is not None:
                        process.wait_exited(timeout=2)
                        raise EngineStartError(
                            name,
                            f"exited with code {process.returncode} before it was SERVING",
                            process.last_lines(),
                        )
                    if pending[name].serving():
                        del pending[name]
                if not envoy_ready:
                    if self.envoy.process.returncode is not None:
                        raise EngineStartError(
                            "envoy", "exited before it was ready", self.envoy.process.last_lines()
                        )
                    envoy_ready = admin_ready(cfg.envoy_admin_port)
                if self.failure is not None:
                    raise self.failure
                if time.monotonic() >= deadline:
                    if pending:
                        name, probe = next(iter(pending.items()))
                        raise EngineStartError(
                            name,
                            f"not SERVING after {cfg.ready_timeout:.0f}s "
                            f"(last health check: {probe.last_error or 'no answer'})",
                            self.services[name].last_lines(),
                        )
                    raise EngineStartError(
                        "envoy", "admin /ready never answered", self.envoy.process.last_lines()
                    )
                if pending or not envoy_ready:
                    time.sleep(POLL_INTERVAL)
        finally:
            for probe in probes.values():
                probe.close()

    # -- running -----------------------------------------------------------------------------

    def _echo(self, name: str, line: str) -> None:
        with self._out_lock:
            self._out.write(f"{name:<12} | {line}\n")
            self._out.flush()

    def _on_child_exit(self, process: ManagedProcess) -> None:
        if process.stop_requested or self._shutting_down:
            return
        self._record_failure(
            ServiceDiedError(process.name, process.returncode, process.last_lines())
        )

    def _record_failure(self, failure: ServiceDiedError) -> None:
        if self.failure is None:
            self.failure = failure
        self._wake.set()

    def _supervise(self) -> None:
        # Children report their own exit; the Postgres postmaster is a daemon, so poll it.
        while not self._wake.wait(timeout=1.0):
            if self.postgres is not None and not self.postgres.running:
                self._record_failure(
                    ServiceDiedError("postgres", None, tail_file(self.postgres.log_path))
                )
        if self.failure is not None:
            log.error("%s\nstopping the stack", self.failure)
        self._shutdown()

    # -- stop --------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        with self._shutdown_lock:
            if self._shutting_down:
                return
            self._shutting_down = True
            try:
                self._stop_all()
            finally:
                self._stopped.set()

    def _stop_all(self) -> None:
        grace = self.config.stop_grace
        # All services drain at once; each gets what is left of one shared grace period.
        for process in self.services.values():
            process.terminate()
        deadline = time.monotonic() + grace

        def stop_service(process: ManagedProcess) -> Callable[[], object]:
            return lambda: process.stop(grace=max(0.1, deadline - time.monotonic()))

        steps: list[tuple[str, Callable[[], object]]] = [
            (name, stop_service(process)) for name, process in reversed(self.services.items())
        ]
        if self.envoy is not None:
            steps.append(("envoy", self.envoy.stop))
        if self.nats is not None:
            steps.append(("nats", self.nats.stop))
        if self.redis is not None:
            steps.append(("redis", self.redis.stop))
        if self.postgres is not None:
            steps.append(("postgres", self.postgres.stop))
        for name, step in steps:
            try:
                step()
            except (EngineStopError, OSError) as exc:
                log.error("could not stop %s: %s", name, exc)
                self.stop_errors.append(exc)
