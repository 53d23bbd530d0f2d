"""A gateway running in-process in front of a real identity service, on real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from gateway.main import build_app
from gateway.settings import GatewaySettings
from switchboard.gateway.v1 import gateway_pb2_grpc
from switchboard.identity.v1 import identity_pb2_grpc
from switchboard_runtime.server import ServiceApp
from tests.identity_fixtures import SERVICE_SECRET, IdentityUnderTest


@dataclass
class GatewayUnderTest:
    app: ServiceApp
    channel: grpc.aio.Channel
    identity: identity_pb2_grpc.IdentityServiceStub
    info: gateway_pb2_grpc.GatewayServiceStub
    settings: GatewaySettings


@pytest.fixture
async def start_gateway(
    identity: IdentityUnderTest, fresh_redis_url: str, free_port: Callable[[], int]
) -> AsyncIterator[Callable[..., Any]]:
    running: list[GatewayUnderTest] = []

    async def start(**overrides: Any) -> GatewayUnderTest:
        nowhere = f"127.0.0.1:{free_port()}"  # services these tests do not start
        settings = GatewaySettings(
            grpc_host="127.0.0.1",
            grpc_port=0,
            metrics_port=0,
            body_check_port=0,
            redis_url=fresh_redis_url,
            identity_addr=f"127.0.0.1:{identity.app.bound_port}",
            conversation_addr=nowhere,
            llm_router_addr=nowhere,
            connectors_addr=nowhere,
            service_client_id="conversation",
            service_client_secret=SERVICE_SECRET,
            **overrides,
        )
        app = build_app(settings)
        await app.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.bound_port}")
        gateway = GatewayUnderTest(
            app,
            channel,
            identity_pb2_grpc.IdentityServiceStub(channel),
            gateway_pb2_grpc.GatewayServiceStub(channel),
            settings,
        )
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.channel.close()
        await gateway.app.stop()


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any]) -> GatewayUnderTest:
    started: GatewayUnderTest = await start_gateway()
    return started
