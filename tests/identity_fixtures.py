"""Fixtures: an identity service running in-process on real Postgres and NATS, with a
hand-moved clock, for any test that needs real tenants, users and tokens."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest

from identity.main import build_app
from identity.settings import IdentitySettings
from switchboard.identity.v1 import identity_pb2, identity_pb2_grpc
from switchboard_runtime.clock import ManualClock
from switchboard_runtime.server import ServiceApp

KEY_ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()
SERVICE_SECRET = "s3rvice-secret-for-tests-0123456789"
PASSWORD = "correct horse battery staple"


@dataclass
class IdentityUnderTest:
    app: ServiceApp
    stub: identity_pb2_grpc.IdentityServiceStub
    channel: grpc.aio.Channel
    clock: ManualClock
    settings: IdentitySettings
    database_url: str

    async def sign_up(self, **overrides: Any) -> identity_pb2.SignUpResponse:
        fields: dict[str, Any] = {
            "tenant_name": "Acme",
            "tenant_slug": f"acme-{uuid.uuid4().hex[:8]}",
            "email": "owner@acme.test",
            "password": PASSWORD,
            "display_name": "Olive Owner",
        } | overrides
        return await self.stub.SignUp(identity_pb2.SignUpRequest(**fields))


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def identity_settings(fresh_database: str, nats_url: str) -> IdentitySettings:
    return IdentitySettings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        database_url=fresh_database,
        nats_url=nats_url,
        signing_key_encryption_key=KEY_ENCRYPTION_KEY,
        service_client_secrets=(f"conversation={SERVICE_SECRET}",),
        # Cheap hashing keeps the suite fast; `make bench` measures the real cost.
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        login_slow_after_failures=3,
        login_lock_after_failures=6,
    )


StartIdentity = Callable[..., "AsyncIterator[IdentityUnderTest]"]


@pytest.fixture
async def start_identity(
    identity_settings: IdentitySettings,
) -> AsyncIterator[Callable[..., Any]]:
    """Start an identity service (settings may be overridden); all are stopped afterwards."""
    running: list[IdentityUnderTest] = []

    async def start(clock: ManualClock | None = None, **overrides: Any) -> IdentityUnderTest:
        settings = replace(identity_settings, **overrides)
        clock = clock or ManualClock()
        app = build_app(settings, clock=clock)
        await app.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.bound_port}")
        under_test = IdentityUnderTest(
            app,
            identity_pb2_grpc.IdentityServiceStub(channel),
            channel,
            clock,
            settings,
            identity_settings.database_url,
        )
        running.append(under_test)
        return under_test

    yield start
    for under_test in running:
        await under_test.channel.close()
        await under_test.app.stop()


@pytest.fixture
async def identity(start_identity: Callable[..., Any]) -> IdentityUnderTest:
    started: IdentityUnderTest = await start_identity()
    return started
