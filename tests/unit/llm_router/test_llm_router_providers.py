"""Providers: the mock's deterministic replies, and each SDK's exceptions mapped to the
router's failure classes (retry elsewhere, cool down, or the caller's fault)."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from llm_router.config import DeploymentConfig, MockOptions
from llm_router.domain import (
    ChatMessage,
    CompletionRequest,
    FinishReason,
    Role,
    StreamEnd,
    TextDelta,
)
from llm_router.errors import (
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    RetryableProviderError,
)
from llm_router.providers.anthropic_provider import map_anthropic_error
from llm_router.providers.base import retry_after_seconds
from llm_router.providers.mock_provider import MockProvider
from llm_router.providers.openai_provider import map_openai_error

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")


def _mock(**options: object) -> MockProvider:
    return MockProvider(
        DeploymentConfig(
            id="m",
            alias="default",
            provider="mock",
            model="mock",
            mock=MockOptions(**options),  # type: ignore[arg-type]
        )
    )


def _ask(text: str, **settings: object) -> CompletionRequest:
    return CompletionRequest(
        model="default",
        messages=(ChatMessage(Role.USER, text),),
        **settings,  # type: ignore[arg-type]
    )


async def test_the_mock_replies_deterministically_with_usage() -> None:
    completion = await _mock(filler_tokens=2).complete(_ask("hi there"), transport_timeout=1)

    assert completion.text == "Mock reply: hi there lorem ipsum"
    assert completion.finish_reason is FinishReason.STOP
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 6)


async def test_the_mock_honours_max_tokens_and_stop_sequences() -> None:
    mock = _mock()

    short = await mock.complete(_ask("a b c d", max_tokens=3), transport_timeout=1)
    stopped = await mock.complete(_ask("a b c d", stop=(" c",)), transport_timeout=1)

    assert (short.text, short.finish_reason) == ("Mock reply: a", FinishReason.LENGTH)
    assert stopped.text == "Mock reply: a b"


async def test_the_mock_streams_words_that_concatenate_to_the_reply() -> None:
    events = [event async for event in _mock().stream(_ask("x y"), transport_timeout=1)]

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Mock reply: x y"
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].usage.completion_tokens == 4


async def test_a_mock_with_error_rate_one_always_fails_retryably() -> None:
    with pytest.raises(RetryableProviderError):
        await _mock(error_rate=1.0).complete(_ask("x"), transport_timeout=1)


def _status(cls: type[openai.APIStatusError], status: int, **headers: str) -> Exception:
    response = httpx2.Response(status, headers=headers, request=REQUEST)
    return cls("provider said no: sk-abc...xyz", response=response, body=None)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_status(openai.RateLimitError, 429, **{"retry-after": "3"}), ProviderRateLimitedError),
        (_status(openai.BadRequestError, 400), ProviderRejectedError),
        (_status(openai.UnprocessableEntityError, 422), ProviderRejectedError),
        (_status(openai.InternalServerError, 503), RetryableProviderError),
        (_status(openai.NotFoundError, 404), RetryableProviderError),
        (openai.APITimeoutError(request=REQUEST), ProviderTimeoutError),
        (openai.APIConnectionError(request=REQUEST), RetryableProviderError),
        (httpx2.RemoteProtocolError("peer closed", request=REQUEST), RetryableProviderError),
        (httpx2.ReadTimeout("slow", request=REQUEST), ProviderTimeoutError),
    ],
    ids=["429", "400", "422", "503", "404", "timeout", "connection", "raw cut", "raw timeout"],
)
def test_openai_errors_map_to_the_routers_classes(error: Exception, expected: type) -> None:
    mapped = map_openai_error(error)

    assert type(mapped) is expected


def test_a_429_carries_its_retry_after() -> None:
    mapped = map_openai_error(_status(openai.RateLimitError, 429, **{"retry-after": "3"}))

    assert isinstance(mapped, ProviderRateLimitedError)
    assert mapped.retry_after_s == 3.0


def test_a_refused_key_is_reported_without_the_providers_words() -> None:
    mapped = map_openai_error(_status(openai.AuthenticationError, 401))

    assert isinstance(mapped, RetryableProviderError)
    assert "sk-" not in str(mapped)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(529, RetryableProviderError), (429, ProviderRateLimitedError), (413, ProviderRejectedError)],
)
def test_anthropic_statuses_map_to_the_routers_classes(status: int, expected: type) -> None:
    response = httpx2.Response(status, request=REQUEST)
    error = anthropic.APIStatusError("overloaded", response=response, body=None)

    assert type(map_anthropic_error(error)) is expected


def test_retry_after_is_read_in_milliseconds_seconds_or_as_a_date() -> None:
    assert retry_after_seconds(httpx2.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(httpx2.Headers({"retry-after": "2"})) == 2.0
    assert (
        retry_after_seconds(httpx2.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    )
    assert retry_after_seconds(httpx2.Headers({})) is None
