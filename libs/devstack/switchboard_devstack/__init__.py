"""Switchboard's developer stack: real engines from PyPI wheels, the Envoy edge, a supervisor.

Used by `make run` (`python -m switchboard_devstack run`) and by the test suite's fixtures.
"""

from __future__ import annotations

from switchboard_devstack.envoy_config import build_config, write_config
from switchboard_devstack.envoy_engine import EnvoyEngine, validate_config
from switchboard_devstack.nats_engine import NatsEngine
from switchboard_devstack.postgres_engine import PostgresEngine
from switchboard_devstack.processes import free_port
from switchboard_devstack.redis_engine import RedisEngine
from switchboard_devstack.stack import Stack
from switchboard_devstack.stack_config import PUBLIC_SERVICES, ServiceDefinition, StackConfig

__all__ = [
    "PUBLIC_SERVICES",
    "EnvoyEngine",
    "NatsEngine",
    "PostgresEngine",
    "RedisEngine",
    "ServiceDefinition",
    "Stack",
    "StackConfig",
    "build_config",
    "free_port",
    "validate_config",
    "write_config",
]
