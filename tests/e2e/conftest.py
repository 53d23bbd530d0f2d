"""The whole suite as `make run` starts it — engines, five services, Envoy — on free ports."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard_devstack.processes import free_port
from switchboard_devstack.stack import Stack
from switchboard_devstack.stack_config import StackConfig, default_services, find_repo_root

SERVICE_KEYS = ("GATEWAY", "IDENTITY", "CONVERSATION", "LLM_ROUTER", "CONNECTORS")
E2E_GATEWAY_LIMITS = {
    "RATE_LIMIT_AUTH": "100:200",
    "RATE_LIMIT_WRITE": "100:200",
    "RATE_LIMIT_READ": "2:10",
    "RATE_LIMIT_TENANT_FACTOR": "2",
}


def start_stack(data_dir: Path) -> Stack:
    """A started stack on free ports with its data in `data_dir`."""
    ports = {f"SWITCHBOARD_{key}_PORT": str(free_port()) for key in SERVICE_KEYS}
    ports |= {f"SWITCHBOARD_{key}_METRICS_PORT": str(free_port()) for key in SERVICE_KEYS}
    ports["SWITCHBOARD_GATEWAY_BODY_CHECK_PORT"] = str(free_port())
    repo = find_repo_root()
    services = tuple(
        # Every test signs in from 127.0.0.1: room for that, and a read bucket small enough
        # for the burst test to exhaust quickly.
        dataclasses.replace(service, env={**service.env, **E2E_GATEWAY_LIMITS})
        if service.name == "gateway"
        else service
        for service in default_services(ports)
    )
    config = StackConfig(
        repo_root=repo,
        data_dir=data_dir,
        services=services,
        envoy_port=free_port(),
        envoy_admin_port=free_port(),
        nats_port=free_port(),
        nats_monitor_port=free_port(),
        descriptor_path=repo / "gen" / "descriptor.binpb",
        echo_service_output=False,
    )
    return Stack(config, out=io.StringIO()).start()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(Path(tmp_path_factory.mktemp("stack")))
    try:
        yield running
    finally:
        running.stop()
