"""What the local stack runs and where: services, ports, data dir, external servers.

`StackConfig.from_env()` is what `make run` uses; tests build a `StackConfig` directly with
free ports, a temporary data dir and stand-in service commands.

Environment variables read by `from_env` (all optional):

    SWITCHBOARD_DATA_DIR            data, sockets and logs (default: .data in the repo root)
    SWITCHBOARD_ENVOY_PORT          edge listener (8080)     SWITCHBOARD_ENVOY_ADMIN_PORT (9901)
    SWITCHBOARD_<SERVICE>_PORT      gRPC port: GATEWAY 50051, IDENTITY 50052, CONVERSATION 50053,
                                    LLM_ROUTER 50054, CONNECTORS 50055
    SWITCHBOARD_<SERVICE>_METRICS_PORT   Prometheus port (9101 ... 9105, same order)
    SWITCHBOARD_NATS_PORT (4222)    SWITCHBOARD_NATS_MONITOR_PORT (8222)
    SWITCHBOARD_REDIS_PORT          TCP port for Redis (default: a Unix socket in the data dir)
    DATABASE_URL, REDIS_URL, NATS_URL    use these servers instead of starting embedded ones
                                    (DATABASE_URL is a server DSN; one database per service is
                                    created on it when missing)
    LOG_LEVEL                       passed to every service (INFO)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from switchboard_devstack.envoy_config import DEFAULT_CORS_ORIGINS
from switchboard_runtime.contract import public_services

# The gRPC services Envoy transcodes to JSON/REST: those with a method the access policies in
# the protos expose, so nobody keeps this list by hand.
PUBLIC_SERVICES: tuple[str, ...] = tuple(public_services())


@dataclass(frozen=True, kw_only=True)
class ServiceDefinition:
    """One service process and the resources it gets wired to."""

    name: str
    command: tuple[str, ...]
    grpc_port: int
    metrics_port: int
    # Name of its own Postgres database, if it has one.
    database: str | None = None
    # Its Redis logical database, if it uses Redis.
    redis_db: int | None = None
    uses_nats: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def address_env(self) -> str:
        """The variable peers read this service's address from, e.g. LLM_ROUTER_ADDR."""
        return f"{self.env_name}_ADDR"

    @property
    def env_name(self) -> str:
        return self.name.upper().replace("-", "_")


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    return int(env.get(f"SWITCHBOARD_{key}", default))


def default_services(
    environ: Mapping[str, str] | None = None, *, python: str = sys.executable
) -> tuple[ServiceDefinition, ...]:
    """The five Switchboard services (`python -m <package>`), ports overridable via `environ`."""
    env = os.environ if environ is None else environ
    return (
        ServiceDefinition(
            name="gateway",
            command=(python, "-m", "gateway"),
            grpc_port=_port(env, "GATEWAY_PORT", 50051),
            metrics_port=_port(env, "GATEWAY_METRICS_PORT", 9101),
            redis_db=0,
            # The JSON body check Envoy consults before transcoding (see envoy_config).
            env={"BODY_CHECK_PORT": str(_port(env, "GATEWAY_BODY_CHECK_PORT", 50061))},
        ),
        ServiceDefinition(
            name="identity",
            command=(python, "-m", "identity"),
            grpc_port=_port(env, "IDENTITY_PORT", 50052),
            metrics_port=_port(env, "IDENTITY_METRICS_PORT", 9102),
            database="switchboard_identity",
            uses_nats=True,
        ),
        ServiceDefinition(
            name="conversation",
            command=(python, "-m", "conversation"),
            grpc_port=_port(env, "CONVERSATION_PORT", 50053),
            metrics_port=_port(env, "CONVERSATION_METRICS_PORT", 9103),
            database="switchboard_conversation",
            uses_nats=True,
        ),
        ServiceDefinition(
            name="llm-router",
            command=(python, "-m", "llm_router"),
            grpc_port=_port(env, "LLM_ROUTER_PORT", 50054),
            metrics_port=_port(env, "LLM_ROUTER_METRICS_PORT", 9104),
            redis_db=1,
        ),
        ServiceDefinition(
            name="connectors",
            command=(python, "-m", "connectors"),
            grpc_port=_port(env, "CONNECTORS_PORT", 50055),
            metrics_port=_port(env, "CONNECTORS_METRICS_PORT", 9105),
            database="switchboard_connectors",
            uses_nats=True,
        ),
    )


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest directory above `start` (default: this package) holding pyproject.toml."""
    here = (start or Path(__file__)).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd()


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """Everything the supervisor needs; every port is configurable so tests can use free ones."""

    repo_root: Path
    data_dir: Path
    services: tuple[ServiceDefinition, ...]
    envoy_host: str = "127.0.0.1"
    envoy_port: int = 8080
    envoy_admin_port: int = 9901
    nats_port: int = 4222
    nats_monitor_port: int = 8222
    # None: Redis listens on a Unix socket in the data dir only (no port to collide with).
    redis_port: int | None = None
    database_url: str | None = None
    redis_url: str | None = None
    nats_url: str | None = None
    descriptor_path: Path | None = None
    public_services: tuple[str, ...] = PUBLIC_SERVICES
    cors_allowed_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    log_level: str = "INFO"
    # Echo each service's output to the terminal, prefixed with its name.
    echo_service_output: bool = True
    ready_timeout: float = 60.0
    stop_grace: float = 10.0

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def descriptor(self) -> Path:
        return self.descriptor_path or self.repo_root / "gen" / "descriptor.binpb"

    def service(self, name: str) -> ServiceDefinition:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service named {name!r} in this stack")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, repo_root: Path | None = None
    ) -> StackConfig:
        env = os.environ if environ is None else environ
        root = repo_root or find_repo_root()
        data_dir = Path(env.get("SWITCHBOARD_DATA_DIR") or root / ".data")
        if not data_dir.is_absolute():
            data_dir = root / data_dir
        redis_port = env.get("SWITCHBOARD_REDIS_PORT")
        return cls(
            repo_root=root,
            data_dir=data_dir,
            services=default_services(env),
            envoy_port=int(env.get("SWITCHBOARD_ENVOY_PORT", 8080)),
            envoy_admin_port=int(env.get("SWITCHBOARD_ENVOY_ADMIN_PORT", 9901)),
            nats_port=int(env.get("SWITCHBOARD_NATS_PORT", 4222)),
            nats_monitor_port=int(env.get("SWITCHBOARD_NATS_MONITOR_PORT", 8222)),
            redis_port=int(redis_port) if redis_port else None,
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            nats_url=env.get("NATS_URL") or None,
            log_level=env.get("LOG_LEVEL", "INFO"),
        )
