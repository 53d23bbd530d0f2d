"""Anthropic Messages through the official `anthropic` SDK.

Differences the adapter absorbs: system messages go in the top-level `system`; `max_tokens` is
required (the deployment's `default_max_tokens` when the caller sets none); `temperature` and
`top_p` travel in `extra_body` (this SDK version has no arguments for them) and temperature is
capped at Anthropic's maximum of 1, so a request valid for one deployment of an alias is valid
for all of them. Stream iteration can leak the transport's own `httpx2` exceptions (cuts,
stalls); they are mapped here like the SDK's. See sdk_support.py for why calls go through
`client.post` and the aiohttp transport.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Final

import aiohttp
import anthropic
import httpx2

from llm_router.config import DeploymentConfig
from llm_router.domain import (
    Completion,
    CompletionRequest,
    FinishReason,
    Role,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)
from llm_router.errors import (
    ProviderError,
    RetryableProviderError,
)
from llm_router.providers.sdk_support import (
    SdkErrors,
    as_mapping,
    map_sdk_error,
    number,
)

_FINISH: Final = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "tool_use": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "refusal": FinishReason.CONTENT_FILTER,
}
_MAX_TEMPERATURE: Final = 1.0


_ERRORS: Final = SdkErrors(
    anthropic.APIStatusError, anthropic.APITimeoutError, anthropic.APIConnectionError
)


def map_anthropic_error(error: Exception) -> ProviderError:
    """The router's view of an exception out of the anthropic SDK (or its transport)."""
    return map_sdk_error(error, _ERRORS)


_MAPPED: Final = (
    anthropic.AnthropicError, httpx2.HTTPError, aiohttp.ClientError, ValueError, KeyError,
    TypeError,
)  # fmt: skip


class AnthropicProvider:
    """One deployment's `AsyncAnthropic` client, reused by every call."""

    def __init__(self, deployment: DeploymentConfig) -> None:
        self._model = deployment.model
        self._default_max_tokens = deployment.default_max_tokens
        self._client = anthropic.AsyncAnthropic(
            api_key=deployment.api_key,
            base_url=deployment.base_url,
            max_retries=0,
            timeout=deployment.timeout_s,
            http_client=anthropic.DefaultAioHttpClient(),
        )

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role is Role.SYSTEM)
        body: dict[str, Any] = {
            "model": self._model,
            "max_tokens": request.max_tokens or self._default_max_tokens,
            "messages": [
                {"role": m.role.value, "content": m.content}
                for m in request.messages
                if m.role is not Role.SYSTEM
            ],
        }
        if system:
            body["system"] = system
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, _MAX_TEMPERATURE)
        if request.top_p is not None:
            body["top_p"] = request.top_p
        return body

    def _options(self, request: CompletionRequest, timeout: float) -> Any:
        options: dict[str, Any] = {"timeout": timeout}
        if request.request_id:
            options["headers"] = {"x-request-id": request.request_id}
        return options

    async def complete(self, request: CompletionRequest, *, transport_timeout: float) -> Completion:
        try:
            message = as_mapping(
                await self._client.post(
                    "/v1/messages",
                    body=self._body(request),
                    cast_to=object,
                    options=self._options(request, transport_timeout),
                )
            )
            blocks = message.get("content") or ()
            usage = message.get("usage") or {}
            return Completion(
                text="".join(b.get("text") or "" for b in blocks if b.get("type") == "text"),
                finish_reason=_FINISH.get(
                    message.get("stop_reason") or "", FinishReason.UNSPECIFIED
                ),
                usage=Usage(number(usage.get("input_tokens")), number(usage.get("output_tokens"))),
            )
        except _MAPPED as error:
            raise map_anthropic_error(error) from error

    async def stream(
        self, request: CompletionRequest, *, transport_timeout: float
    ) -> AsyncGenerator[StreamEvent, None]:
        body = self._body(request)
        body["stream"] = True
        try:
            events = await self._client.post(
                "/v1/messages",
                body=body,
                cast_to=object,
                options=self._options(request, transport_timeout),
                stream=True,
                stream_cls=anthropic.AsyncStream[object],
            )
            async with events:
                prompt_tokens = completion_tokens = 0
                finish = FinishReason.UNSPECIFIED
                stopped = False
                async for raw in events:
                    event = as_mapping(raw)
                    kind = event.get("type")
                    if kind == "content_block_delta":
                        text = (event.get("delta") or {}).get("text")
                        if text:
                            yield TextDelta(text)
                    elif kind == "message_start":
                        counted = (event.get("message") or {}).get("usage") or {}
                        prompt_tokens = number(counted.get("input_tokens"))
                    elif kind == "message_delta":
                        completion_tokens = number((event.get("usage") or {}).get("output_tokens"))
                        reason = (event.get("delta") or {}).get("stop_reason")
                        finish = _FINISH.get(reason or "", FinishReason.UNSPECIFIED)
                    elif kind == "message_stop":
                        stopped = True
                if not stopped:
                    raise RetryableProviderError("stream ended without message_stop")
                yield StreamEnd(finish, Usage(prompt_tokens, completion_tokens))
        except _MAPPED as error:
            raise map_anthropic_error(error) from error

    async def aclose(self) -> None:
        await self._client.close()
