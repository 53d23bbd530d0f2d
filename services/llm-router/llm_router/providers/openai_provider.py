"""OpenAI Chat Completions through the official `openai` SDK; also any OpenAI-compatible server
(vLLM, Ollama, Azure's v1 endpoint) by `base_url`.

The SDK's own retries are off (`max_retries=0`): the router decides about retries, with a budget.
See sdk_support.py for why calls go through `client.post` and the aiohttp transport.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Final

import aiohttp
import httpx2
import openai

from llm_router.config import DeploymentConfig
from llm_router.domain import (
    Completion,
    CompletionRequest,
    FinishReason,
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
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
    "tool_calls": FinishReason.STOP,
    "function_call": FinishReason.STOP,
}


_ERRORS: Final = SdkErrors(openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError)


def map_openai_error(error: Exception) -> ProviderError:
    """The router's view of an exception out of the openai SDK (or its transport)."""
    return map_sdk_error(error, _ERRORS)


_MAPPED: Final = (
    openai.OpenAIError, httpx2.HTTPError, aiohttp.ClientError, ValueError, KeyError, TypeError,
)  # fmt: skip


class OpenAIProvider:
    """One deployment's `AsyncOpenAI` client, reused by every call."""

    def __init__(self, deployment: DeploymentConfig) -> None:
        self._model = deployment.model
        self._client = openai.AsyncOpenAI(
            api_key=deployment.api_key,
            base_url=deployment.base_url,
            max_retries=0,
            timeout=deployment.timeout_s,
            http_client=openai.DefaultAioHttpClient(),
        )

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role.value, "content": m.content} for m in request.messages],
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _options(self, request: CompletionRequest, timeout: float) -> Any:
        options: dict[str, Any] = {"timeout": timeout}
        if request.request_id:
            options["headers"] = {"x-request-id": request.request_id}
        return options

    async def complete(self, request: CompletionRequest, *, transport_timeout: float) -> Completion:
        try:
            reply = as_mapping(
                await self._client.post(
                    "/chat/completions",
                    body=self._body(request),
                    cast_to=object,
                    options=self._options(request, transport_timeout),
                )
            )
            choices = reply["choices"]
            if not choices:
                raise RetryableProviderError("malformed answer (no choices)")
            choice = as_mapping(choices[0])
            usage = reply.get("usage") or {}
            return Completion(
                text=as_mapping(choice["message"]).get("content") or "",
                finish_reason=_FINISH.get(
                    choice.get("finish_reason") or "", FinishReason.UNSPECIFIED
                ),
                usage=Usage(
                    number(usage.get("prompt_tokens")), number(usage.get("completion_tokens"))
                ),
            )
        except _MAPPED as error:
            raise map_openai_error(error) from error

    async def stream(
        self, request: CompletionRequest, *, transport_timeout: float
    ) -> AsyncGenerator[StreamEvent, None]:
        body = self._body(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        try:
            chunks = await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                options=self._options(request, transport_timeout),
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            async with chunks:
                finish: FinishReason | None = None
                usage = Usage()
                async for raw in chunks:
                    chunk = as_mapping(raw)
                    counted = chunk.get("usage")
                    if counted:
                        usage = Usage(
                            number(counted.get("prompt_tokens")),
                            number(counted.get("completion_tokens")),
                        )
                    for choice in chunk.get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield TextDelta(text)
                        reason = choice.get("finish_reason")
                        if reason:
                            finish = _FINISH.get(reason, FinishReason.UNSPECIFIED)
                if finish is None:
                    # A clean EOF without a finish reason is a truncated answer, not a reply.
                    raise RetryableProviderError("stream ended without a finish reason")
                yield StreamEnd(finish, usage)
        except _MAPPED as error:
            raise map_openai_error(error) from error

    async def aclose(self) -> None:
        await self._client.close()
