"""Fixtures for the LLM router's integration tests: real Redis, real stand-ins, real SDKs,
and the router as a real ServiceApp (gRPC on a free port) authenticating every call through a
real identity service.

    router_identity   session: identity on its own database, a user token, an operator token
    standins          start stand-in provider servers (closed after the test)
    start_router      start a router app from a YAML config (stopped after the test)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from identity.main import build_app as build_identity_app
from identity.settings import IdentitySettings
from switchboard.identity.v1 import identity_pb2, identity_pb2_grpc
from switchboard_devstack.postgres_engine import PostgresEngine
from switchboard_runtime.clock import ManualClock as IdentityClock
from switchboard_standins import FaultProfile, StandinServer
from tests.identity_fixtures import KEY_ENCRYPTION_KEY, PASSWORD, SERVICE_SECRET
from tests.integration.llm_router.router_support import (
    STANDIN_KEY,
    IdentityForRouter,
    RouterUnderTest,
    StartRouter,
    start_router_under_test,
)


@pytest.fixture(scope="session")
async def router_identity(
    postgres_engine: PostgresEngine, nats_url: str
) -> AsyncIterator[IdentityForRouter]:
    """One identity service for every router test: tokens are all the router needs of it."""
    name = f"t_router_{uuid.uuid4().hex[:8]}"
    settings = IdentitySettings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        database_url=postgres_engine.create_database(name),
        nats_url=nats_url,
        signing_key_encryption_key=KEY_ENCRYPTION_KEY,
        service_client_secrets=(f"conversation={SERVICE_SECRET}",),
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
    )
    app = build_identity_app(settings, clock=IdentityClock())
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.bound_port}")
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    try:
        signed_up = await stub.SignUp(
            identity_pb2.SignUpRequest(
                tenant_name="Router Tests",
                tenant_slug=f"router-{uuid.uuid4().hex[:8]}",
                email="owner@router.test",
                password=PASSWORD,
                display_name="Rita Router",
            )
        )
        operator = await stub.IssueServiceToken(
            identity_pb2.IssueServiceTokenRequest(
                service_name="conversation", client_secret=SERVICE_SECRET, scopes=["llm:operate"]
            )
        )
        yield IdentityForRouter(
            address=f"127.0.0.1:{app.bound_port}",
            user_token=signed_up.tokens.access_token,
            operator_token=operator.access_token,
        )
    finally:
        await channel.close()
        await app.stop()
        postgres_engine.drop_database(name)


@pytest.fixture
async def standins() -> AsyncIterator[Callable[..., Any]]:
    """`await standins("openai", profile=...)`: a started stand-in, closed after the test."""
    started: list[StandinServer] = []

    async def start(kind: str = "openai", *, profile: FaultProfile | None = None) -> StandinServer:
        server = StandinServer(kind, api_key=STANDIN_KEY, profile=profile)  # type: ignore[arg-type]
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close()


@pytest.fixture
async def start_router(
    router_identity: IdentityForRouter, fresh_redis_url: str
) -> AsyncIterator[StartRouter]:
    """`await start_router(config_yaml, clock=..., key_prefix=...)`: a serving router app."""
    running: list[RouterUnderTest] = []

    async def start(config_yaml: str, **options: Any) -> RouterUnderTest:
        router = await start_router_under_test(
            config_yaml, identity=router_identity, redis_url=fresh_redis_url, **options
        )
        running.append(router)
        return router

    yield start
    for router in running:
        await router.stop()
