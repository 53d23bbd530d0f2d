"""The OpenAI stand-in, driven by the real openai SDK over a real socket."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from switchboard_standins import Fault, FaultProfile, ReplyPolicy, RequestRecord, StandinServer

MODEL = "gpt-4o-mini"
HELLO: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there world"},
]


async def test_a_completion_echoes_the_last_user_message_with_usage_in_words(
    openai_client: openai.AsyncOpenAI,
) -> None:
    completion = await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello there world"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 5  # "be brief" + "hello there world"
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 9


async def test_streamed_deltas_concatenate_to_the_non_streamed_text(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.set_reply(ReplyPolicy(filler_tokens=20))
    whole = await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == whole.choices[0].message.content
    assert len([d for d in deltas if d]) == 24
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].object == "chat.completion.chunk"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 24
    assert chunks[-1].usage.prompt_tokens == 5


async def test_a_stream_without_include_usage_has_no_usage_chunk(
    openai_client: openai.AsyncOpenAI,
) -> None:
    stream = await openai_client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


async def test_max_tokens_cuts_the_reply_with_finish_reason_length(
    openai_client: openai.AsyncOpenAI,
) -> None:
    completion = await openai_client.chat.completions.create(
        model=MODEL, messages=HELLO, max_completion_tokens=2
    )

    assert completion.choices[0].message.content == "Echo: hello"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2


async def test_a_stop_sequence_ends_the_reply_before_it(
    openai_client: openai.AsyncOpenAI,
) -> None:
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=HELLO, stop=["world"], stream=True
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Echo: hello there"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_canned_reply_replaces_the_echo(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.set_reply(ReplyPolicy(canned="It is sunny."))

    completion = await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    assert completion.choices[0].message.content == "It is sunny."


async def test_the_model_list_has_openai_s_shape(openai_client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in openai_client.models.list()]

    assert models == ["gpt-4o-mini", "gpt-4o"]


async def test_a_wrong_key_is_an_authentication_error(
    openai_server: StandinServer,
) -> None:
    async with openai.AsyncOpenAI(
        base_url=openai_server.base_url, api_key="sk-wrong-key", max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model=MODEL, messages=HELLO)

    assert caught.value.code == "invalid_api_key"
    assert openai_server.stats().statuses == {401: 1}


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"max_completion_tokens": -1}, "max_completion_tokens", "integer_below_min_value"),
        ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
    ],
)
async def test_an_invalid_request_is_a_bad_request_naming_the_parameter(
    openai_client: openai.AsyncOpenAI, change: dict[str, Any], param: str, code: str
) -> None:
    body: dict[str, Any] = {"model": MODEL, "messages": HELLO, **change}

    with pytest.raises(openai.BadRequestError) as caught:
        await openai_client.chat.completions.create(**body)

    assert caught.value.param == param
    assert caught.value.code == code


async def test_an_unknown_model_is_not_found_when_models_are_configured(
    standin_key: str,
) -> None:
    async with (
        StandinServer("openai", api_key=standin_key, models=["gpt-4o"]) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key=standin_key, max_retries=0) as client,
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="gpt-3", messages=HELLO)

    assert caught.value.code == "model_not_found"


async def test_an_injected_503_is_an_internal_server_error(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.error(503))

    with pytest.raises(openai.InternalServerError) as caught:
        await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    assert caught.value.status_code == 503
    assert openai_server.stats().faults == {"error_503": 1}


async def test_an_injected_429_carries_retry_after(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.rate_limited(retry_after_s=7))

    with pytest.raises(openai.RateLimitError) as caught:
        await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"


async def test_scripted_faults_hit_the_next_requests_in_order_then_stop(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.error(500), Fault.error(400))

    with pytest.raises(openai.InternalServerError):
        await openai_client.chat.completions.create(model=MODEL, messages=HELLO)
    with pytest.raises(openai.BadRequestError):
        await openai_client.chat.completions.create(model=MODEL, messages=HELLO)
    completion = await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    assert completion.choices[0].finish_reason == "stop"
    assert openai_server.pending_script == 0


async def test_a_drawn_error_rate_of_one_fails_every_request(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.set_profile(FaultProfile(error_rates={503: 1.0}))

    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    assert openai_server.stats().statuses == {503: 3}


async def test_a_connection_reset_is_a_connection_error(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.connection_reset())

    with pytest.raises(openai.APIConnectionError):
        await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    [record] = openai_server.stats().recent
    assert (record.outcome, record.status) == ("reset", None)


async def test_a_json_reply_cut_mid_body_is_a_connection_error(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.cut(after_tokens=1))

    with pytest.raises(openai.APIConnectionError):
        await openai_client.chat.completions.create(model=MODEL, messages=HELLO)

    assert openai_server.stats().outcomes == {"cut": 1}


async def test_a_stream_cut_mid_answer_raises_after_the_delivered_tokens(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.cut(after_tokens=2))
    stream = await openai_client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    request_id = stream.response.headers["x-standin-request-id"]
    received: list[str] = []

    # The SDK maps the transport's "incomplete chunked read" to APIConnectionError.
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert "".join(received) == "Echo: hello"
    record = await finished(openai_server, request_id)
    assert (record.outcome, record.fault) == ("cut", "cut")


async def test_a_stalled_stream_times_the_client_out_and_is_recorded_as_client_closed(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.stall(after_tokens=1))
    stream = await openai_client.with_options(timeout=0.5).chat.completions.create(
        model=MODEL, messages=HELLO, stream=True
    )
    request_id = stream.response.headers["x-standin-request-id"]

    with pytest.raises(openai.APITimeoutError):
        async for _ in stream:
            pass

    record = await finished(openai_server, request_id)
    assert (record.outcome, record.fault, record.status) == ("client_closed", "stall", 200)


async def test_a_slow_first_token_holds_the_stream_after_the_role_chunk(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    # Far apart on purpose: the first token waits 20 s, the client gives up after 0.5 s.
    openai_server.set_profile(FaultProfile(first_token_ms=20_000))
    stream = await openai_client.with_options(timeout=0.5).chat.completions.create(
        model=MODEL, messages=HELLO, stream=True
    )
    received = []

    with pytest.raises(openai.APITimeoutError):
        async for chunk in stream:
            received.append(chunk)

    assert [chunk.choices[0].delta.role for chunk in received] == ["assistant"]


async def test_a_client_that_abandons_a_stream_is_recorded_as_client_closed(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    # 100 tokens 50 ms apart: the stand-in is still answering when the client leaves.
    openai_server.set_profile(FaultProfile(inter_token_ms=50))
    openai_server.set_reply(ReplyPolicy(filler_tokens=100))
    stream = await openai_client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    request_id = stream.response.headers["x-standin-request-id"]

    async with stream:
        async for chunk in stream:
            if chunk.choices[0].delta.content == " hello":
                break

    record = await finished(openai_server, request_id)
    assert (record.outcome, record.fault) == ("client_closed", None)
    assert openai_server.stats().client_closed == 1


async def test_each_request_is_recorded_with_the_client_s_request_id(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    raw = await openai_client.chat.completions.with_raw_response.create(
        model=MODEL, messages=HELLO, extra_headers={"x-request-id": "client-1"}
    )

    record = openai_server.request(raw.headers["x-standin-request-id"])
    assert record is not None
    assert raw.headers["x-request-id"] == f"req_{record.id}"
    assert (record.client_request_id, record.retry_count) == ("client-1", 0)
    assert (record.path, record.model, record.stream) == ("/v1/chat/completions", MODEL, False)
    assert (record.outcome, record.status) == ("completed", 200)
    assert record.finished_at is not None and record.finished_at >= record.started_at


async def finished(server: StandinServer, request_id: str) -> RequestRecord:
    """The request's record once the stand-in has seen it end (within milliseconds)."""
    async with asyncio.timeout(5):
        return await server.wait_finished(request_id)
