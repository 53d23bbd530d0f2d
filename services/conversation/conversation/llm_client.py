"""The LLM router as the source of bot replies: StreamComplete over gRPC.

Every call carries this service's own token for the conversation's tenant (scope
`llm:complete`), whether or not a user is waiting: the reply outlives the user's call.
Failures become `ReplyModelError` with a short reason, here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Final, Protocol

import grpc
import grpc.aio

from conversation.domain import Prompt
from conversation.errors import ReplyModelError
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_runtime.channels import create_channel
from switchboard_runtime.datastores import NotOpenError

_ROLES: Final = {
    "system": llm_pb2.CHAT_ROLE_SYSTEM,
    "user": llm_pb2.CHAT_ROLE_USER,
    "assistant": llm_pb2.CHAT_ROLE_ASSISTANT,
}
_MAX_REASON: Final = 300

#: Gets this service's token: (tenant_id, scopes) → bearer token.
TokenSource = Callable[..., Awaitable[str]]


class ReplyModel(Protocol):
    """Streams the pieces of a reply to a prompt; raises ReplyModelError if it cannot."""

    def stream(self, tenant_id: str, prompt: Prompt) -> AsyncGenerator[str, None]: ...


def completion_request(prompt: Prompt) -> llm_pb2.StreamCompleteRequest:
    params = llm_pb2.CompletionParams(
        model=prompt.model,
        messages=[
            llm_pb2.ChatMessage(role=_ROLES[turn.role], content=turn.content)
            for turn in prompt.turns
        ],
    )
    if prompt.temperature is not None:
        params.temperature = prompt.temperature
    if prompt.top_p is not None:
        params.top_p = prompt.top_p
    if prompt.max_tokens is not None:
        params.max_tokens = prompt.max_tokens
    return llm_pb2.StreamCompleteRequest(params=params)


def _reason(error: grpc.aio.AioRpcError) -> str:
    details = (error.details() or "").strip()
    reason = f"llm router: {error.code().name}" + (f": {details}" if details else "")
    return reason[:_MAX_REASON]


class RouterReplyModel:
    """`ReplyModel` over the LLM router's StreamComplete; attach it to the app to open it."""

    def __init__(
        self,
        address: str,
        *,
        tokens: TokenSource,
        timeout_seconds: float,
        scopes: Sequence[str] = ("llm:complete",),
    ) -> None:
        self._address = address
        self._tokens = tokens
        self._timeout = timeout_seconds
        self._scopes = list(scopes)
        self._channel: grpc.aio.Channel | None = None
        self._stub: llm_pb2_grpc.LlmServiceAsyncStub | None = None

    async def open(self) -> None:
        self._channel = create_channel(self._address)
        stub: llm_pb2_grpc.LlmServiceAsyncStub = llm_pb2_grpc.LlmServiceStub(self._channel)
        self._stub = stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel, self._stub = None, None

    async def stream(self, tenant_id: str, prompt: Prompt) -> AsyncGenerator[str, None]:
        if self._stub is None:
            raise NotOpenError("the LLM router client is not open")
        try:
            token = await self._tokens(tenant_id=tenant_id, scopes=self._scopes)
        except grpc.aio.AioRpcError as error:
            raise ReplyModelError(
                f"cannot get a token for the llm router: {error.code().name}"
            ) from error
        call = self._stub.StreamComplete(
            completion_request(prompt),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=self._timeout,
        )
        finished = False
        try:
            async for response in call:
                if response.HasField("summary"):
                    finished = True
                elif response.delta:
                    yield response.delta
        except grpc.aio.AioRpcError as error:
            raise ReplyModelError(_reason(error)) from error
        finally:
            call.cancel()  # no-op once finished; stops the router if we were cancelled
        if not finished:
            raise ReplyModelError("llm router: the reply stream ended without a summary")
