"""The `mock` provider: deterministic replies with a configurable pace and failure rate, so the
suite runs offline (`make run` with no provider keys) and routing can be exercised without I/O.

The reply is the configured template with `{last}` replaced by the last user message, plus
`filler_tokens` filler words; a token is a whitespace-separated word. `max_tokens` and stop
sequences are honoured as a provider would.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncGenerator
from typing import Final

from llm_router.config import DeploymentConfig, MockOptions
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
from llm_router.errors import RetryableProviderError

_TOKEN: Final = re.compile(r"\s*\S+")
_FILLER: Final = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


def _reply(options: MockOptions, request: CompletionRequest) -> tuple[list[str], FinishReason]:
    last = next((m.content for m in reversed(request.messages) if m.role is Role.USER), "")
    text = options.reply.replace("{last}", last)
    if options.filler_tokens:
        filler = (_FILLER[i % len(_FILLER)] for i in range(options.filler_tokens))
        text = f"{text} {' '.join(filler)}"
    finish = FinishReason.STOP
    for stop in request.stop:
        index = text.find(stop)
        if index >= 0:
            text = text[:index]
    tokens = _TOKEN.findall(text)
    if request.max_tokens is not None and len(tokens) > request.max_tokens:
        tokens = tokens[: request.max_tokens]
        finish = FinishReason.LENGTH
    return tokens, finish


def _prompt_tokens(request: CompletionRequest) -> int:
    return sum(len(m.content.split()) for m in request.messages)


class MockProvider:
    def __init__(self, deployment: DeploymentConfig) -> None:
        self._options = deployment.mock or MockOptions()
        self._random = random.Random(self._options.seed)

    def _maybe_fail(self) -> None:
        if self._options.error_rate and self._random.random() < self._options.error_rate:
            raise RetryableProviderError("503 mock failure")

    async def complete(self, request: CompletionRequest, *, transport_timeout: float) -> Completion:
        options = self._options
        tokens, finish = _reply(options, request)
        pause = options.latency_ms + options.first_token_ms
        pause += options.inter_token_ms * max(len(tokens) - 1, 0)
        if pause:
            await asyncio.sleep(pause / 1000)
        self._maybe_fail()
        return Completion(
            text="".join(tokens),
            finish_reason=finish,
            usage=Usage(_prompt_tokens(request), len(tokens)),
        )

    async def stream(
        self, request: CompletionRequest, *, transport_timeout: float
    ) -> AsyncGenerator[StreamEvent, None]:
        options = self._options
        tokens, finish = _reply(options, request)
        if options.latency_ms or options.first_token_ms:
            await asyncio.sleep((options.latency_ms + options.first_token_ms) / 1000)
        self._maybe_fail()
        for index, token in enumerate(tokens):
            if index and options.inter_token_ms:
                await asyncio.sleep(options.inter_token_ms / 1000)
            yield TextDelta(token)
        yield StreamEnd(finish, Usage(_prompt_tokens(request), len(tokens)))

    async def aclose(self) -> None:
        return None
