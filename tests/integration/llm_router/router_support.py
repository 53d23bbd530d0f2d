"""Helpers for the router's integration tests: configs pointing at stand-ins, a started router
with a gRPC client, and typed shortcuts for its calls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
import yaml

from llm_router.clock import ManualClock
from llm_router.config import parse_config
from llm_router.main import RouterService, build
from llm_router.router import Router
from llm_router.settings import RouterSettings
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_standins import StandinServer
from tests.identity_fixtures import SERVICE_SECRET

STANDIN_KEY: Final = "sk-router-tests-0123"
#: The environment the router reads API key variables from in these tests.
ENVIRON: Final = {"STANDIN_KEY": STANDIN_KEY}
MODELS: Final = {"openai": "gpt-test", "anthropic": "claude-sonnet-4-6"}
GENERATION_PATHS: Final = ("/v1/chat/completions", "/v1/messages")


@dataclass(frozen=True)
class IdentityForRouter:
    address: str
    user_token: str
    operator_token: str


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def standin_deployment(server: StandinServer, deployment_id: str, **extra: Any) -> dict[str, Any]:
    """A deployment entry for `server`, as the YAML config spells it."""
    return {
        "id": deployment_id,
        "provider": server.kind,
        "model": MODELS[server.kind],
        "base_url": server.base_url,
        "api_key_env": "STANDIN_KEY",
    } | extra


def config_yaml(models: dict[str, list[dict[str, Any]]], **router: Any) -> str:
    """A router configuration: `models` maps aliases to deployments; `router` its policies."""
    document: dict[str, Any] = {"models": {a: {"deployments": d} for a, d in models.items()}}
    if router:
        document["router"] = router
    return yaml.safe_dump(document, sort_keys=False)


def generation_requests(server: StandinServer) -> int:
    """How many generation requests `server` has received."""
    received = server.stats(recent=0).received
    return sum(received.get(path, 0) for path in GENERATION_PATHS)


def messages(text: str = "hello there") -> list[llm_pb2.ChatMessage]:
    return [llm_pb2.ChatMessage(role=llm_pb2.CHAT_ROLE_USER, content=text)]


@dataclass
class RouterUnderTest:
    service: RouterService
    channel: grpc.aio.Channel
    stub: llm_pb2_grpc.LlmServiceStub
    clock: ManualClock
    user: tuple[tuple[str, str], ...]
    operator: tuple[tuple[str, str], ...]

    @property
    def router(self) -> Router:
        return self.service.router

    async def complete(
        self, text: str = "hello there", *, model: str = "default", deadline_s: float = 10.0,
        **params: Any,
    ) -> llm_pb2.CompleteResponse:  # fmt: skip
        request = llm_pb2.CompleteRequest(
            params=llm_pb2.CompletionParams(model=model, messages=messages(text), **params)
        )
        response: llm_pb2.CompleteResponse = await self.stub.Complete(
            request, metadata=self.user, timeout=deadline_s
        )
        return response

    async def stream(
        self, text: str = "hello there", *, model: str = "default", deadline_s: float = 10.0,
        received: list[llm_pb2.StreamCompleteResponse] | None = None,
        started: asyncio.Event | None = None, **params: Any,
    ) -> list[llm_pb2.StreamCompleteResponse]:  # fmt: skip
        """Every message of a StreamComplete call; also appended to `received` as they come,
        so a test still sees them when the call ends with an error; `started` is set at the
        first."""
        request = llm_pb2.StreamCompleteRequest(
            params=llm_pb2.CompletionParams(model=model, messages=messages(text), **params)
        )
        collected = [] if received is None else received
        call = self.stub.StreamComplete(request, metadata=self.user, timeout=deadline_s)
        async for message in call:
            collected.append(message)
            if started is not None:
                started.set()
        return collected

    async def status(self) -> dict[str, llm_pb2.DeploymentStatus]:
        response = await self.stub.GetRouterStatus(
            llm_pb2.GetRouterStatusRequest(), metadata=self.operator
        )
        return {status.deployment_id: status for status in response.deployments}

    async def stop(self) -> None:
        await self.channel.close()
        await self.service.app.stop()


StartRouter = Callable[..., Awaitable[RouterUnderTest]]


async def start_router_under_test(
    yaml_text: str,
    *,
    identity: IdentityForRouter,
    redis_url: str,
    key_prefix: str | None = None,
    clock: ManualClock | None = None,
    config_path: Path | None = None,
    seed: int = 7,
) -> RouterUnderTest:
    """Start a router serving `yaml_text` (written to `config_path` when given, so that SIGHUP
    can re-read it)."""
    import random

    if config_path is not None:
        await asyncio.to_thread(config_path.write_text, yaml_text)
    settings = RouterSettings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        redis_url=redis_url,
        redis_key_prefix=key_prefix or f"t{uuid.uuid4().hex[:8]}",
        identity_addr=identity.address,
        service_client_id="conversation",
        service_client_secret=SERVICE_SECRET,
        llm_router_config=config_path,
        shutdown_grace_seconds=2.0,
    )
    clock = clock or ManualClock()
    service = build(
        settings,
        config=parse_config(yaml_text, environ=ENVIRON),
        clock=clock,
        random_source=random.Random(seed),
        environ=ENVIRON,
    )
    await service.app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.app.bound_port}")
    return RouterUnderTest(
        service=service,
        channel=channel,
        stub=llm_pb2_grpc.LlmServiceStub(channel),
        clock=clock,
        user=bearer(identity.user_token),
        operator=bearer(identity.operator_token),
    )
