"""The whole suite on free ports for a benchmark: engines, five services and Envoy."""

from __future__ import annotations

import dataclasses
import io
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from switchboard_devstack.processes import free_port
from switchboard_devstack.stack import Stack
from switchboard_devstack.stack_config import StackConfig, default_services, find_repo_root

_SERVICE_KEYS = ("GATEWAY", "IDENTITY", "CONVERSATION", "LLM_ROUTER", "CONNECTORS")


@contextmanager
def running_stack(service_env: Mapping[str, Mapping[str, str]] | None = None) -> Iterator[Stack]:
    """A started stack in a temporary data dir; `service_env` adds env vars per service name."""
    ports = {f"SWITCHBOARD_{key}_PORT": str(free_port()) for key in _SERVICE_KEYS}
    ports |= {f"SWITCHBOARD_{key}_METRICS_PORT": str(free_port()) for key in _SERVICE_KEYS}
    ports["SWITCHBOARD_GATEWAY_BODY_CHECK_PORT"] = str(free_port())
    extra = service_env or {}
    services = tuple(
        dataclasses.replace(service, env={**service.env, **extra.get(service.name, {})})
        for service in default_services(ports)
    )
    repo = find_repo_root()
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as data_dir:
        config = StackConfig(
            repo_root=repo,
            data_dir=Path(data_dir),
            services=services,
            envoy_port=free_port(),
            envoy_admin_port=free_port(),
            nats_port=free_port(),
            nats_monitor_port=free_port(),
            descriptor_path=repo / "gen" / "descriptor.binpb",
            echo_service_output=False,
            log_level="WARNING",
        )
        stack = Stack(config, out=io.StringIO())
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
