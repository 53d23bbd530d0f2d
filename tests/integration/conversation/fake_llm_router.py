"""A stand-in for the LLM router's StreamComplete, until the real router (issue 4) lands.

A real grpc.aio server on 127.0.0.1 that authenticates callers the way every Switchboard
service does (the runtime's AuthInterceptor and identity's keys, so a call without a valid
token holding `llm:complete` is refused exactly as the router would refuse it), and answers
with deterministic deltas: "Echo: <the last user message>", one word per delta. Tests control
pace and faults:

- `delay_seconds` between deltas;
- `fail_after`: end the stream with UNAVAILABLE after that many deltas (0: before any);
- `gate`: after the first delta, wait for this event before sending the rest, so a test can
  act (cancel the client) at a known point of the stream without sleeping.

Every call is recorded with its request and verified principal. To use the real router
instead, point the conversation service's `llm_router_addr` at it; only tests that inject
faults or gates need this class.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

from switchboard.identity.v1 import identity_pb2_grpc
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_runtime.access_tokens import TokenAudience
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.principal import Principal, principal_var
from switchboard_runtime.remote_auth import RemoteAuthenticator, ServiceTokenSource

FAILURE_DETAILS = "every deployment of 'default' failed"


def echo_reply(request: llm_pb2.StreamCompleteRequest) -> str:
    """The fake's answer: the last user message, echoed."""
    users = [m.content for m in request.params.messages if m.role == llm_pb2.CHAT_ROLE_USER]
    return f"Echo: {users[-1] if users else ''}"


def deltas_of(text: str) -> list[str]:
    """The reply split the way the fake streams it: one word (with its space) per delta."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


@dataclass
class RecordedCall:
    request: llm_pb2.StreamCompleteRequest
    principal: Principal | None


@dataclass
class FakeLlmRouter:
    delay_seconds: float = 0.0
    fail_after: int | None = None
    gate: asyncio.Event | None = None
    calls: list[RecordedCall] = field(default_factory=list)
    #: Set whenever a call arrives (tests clear it to wait for the next one).
    called: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when a stream the caller abandoned was cancelled here.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    _server: grpc.aio.Server | None = None
    _identity_channel: grpc.aio.Channel | None = None
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, identity_address: str) -> FakeLlmRouter:
        self._identity_channel = grpc.aio.insecure_channel(identity_address)
        identity: Any = identity_pb2_grpc.IdentityServiceStub(self._identity_channel)
        # Access tokens are verified offline against identity's JWKS; the token source would
        # only be used to resolve API keys, which nothing sends here.
        tokens = ServiceTokenSource(identity, service_name="llm-router", client_secret="unused")
        authenticator = RemoteAuthenticator(identity, tokens, audience=TokenAudience())
        self._server = grpc.aio.server(interceptors=[AuthInterceptor(authenticator)])
        # Only StreamComplete is played; the rest answer UNIMPLEMENTED (the generated base class).
        servicer = _Servicer(self)  # type: ignore[abstract]
        llm_pb2_grpc.add_LlmServiceServicer_to_server(servicer, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
        if self._identity_channel is not None:
            await self._identity_channel.close()


class _Servicer(llm_pb2_grpc.LlmServiceServicer):
    def __init__(self, fake: FakeLlmRouter) -> None:
        self._fake = fake

    async def StreamComplete(
        self, request: llm_pb2.StreamCompleteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[llm_pb2.StreamCompleteResponse]:
        fake = self._fake
        fake.calls.append(RecordedCall(request, principal_var.get()))
        fake.called.set()
        pieces = deltas_of(echo_reply(request))
        try:
            for index, piece in enumerate(pieces):
                if fake.fail_after is not None and index >= fake.fail_after:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, FAILURE_DETAILS)
                if index > 0 and fake.delay_seconds:
                    await asyncio.sleep(fake.delay_seconds)
                if index == 1 and fake.gate is not None:
                    await fake.gate.wait()
                yield llm_pb2.StreamCompleteResponse(delta=piece)
            if fake.fail_after is not None and fake.fail_after >= len(pieces):
                await context.abort(grpc.StatusCode.UNAVAILABLE, FAILURE_DETAILS)
            yield llm_pb2.StreamCompleteResponse(
                summary=llm_pb2.StreamSummary(
                    finish_reason=llm_pb2.FINISH_REASON_STOP,
                    deployment_id="fake-1",
                    provider_model="fake-echo",
                )
            )
        except asyncio.CancelledError:
            fake.cancelled.set()
            raise
