"""The Anthropic stand-in, driven by the real anthropic SDK over a real socket."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import MessageParam

from switchboard_standins import Fault, FaultProfile, ReplyPolicy, RequestRecord, StandinServer

MODEL = "claude-sonnet-4-6"
HELLO: list[MessageParam] = [{"role": "user", "content": "hello there world"}]


async def test_a_message_echoes_the_last_user_message_with_usage_in_words(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    message = await anthropic_client.messages.create(
        model=MODEL, max_tokens=100, system="be brief", messages=HELLO
    )

    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello there world"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == 5  # "be brief" + "hello there world"
    assert message.usage.output_tokens == 4


async def test_the_stream_helper_rebuilds_the_non_streamed_message(
    anthropic_server: StandinServer, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.set_reply(ReplyPolicy(filler_tokens=20))
    whole = await anthropic_client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)

    async with anthropic_client.messages.stream(
        model=MODEL, max_tokens=100, messages=HELLO
    ) as stream:
        deltas = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert len(deltas) == 24
    assert [(block.type, getattr(block, "text", None)) for block in final.content] == [
        (block.type, getattr(block, "text", None)) for block in whole.content
    ]
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 24)


async def test_a_raw_stream_follows_the_real_event_sequence(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    stream = await anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=HELLO, stream=True
    )
    events = [event async for event in stream]

    # The SDK drops ping events; the stand-in sends one after content_block_start.
    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    delta = events[-2]
    assert delta.type == "message_delta"
    assert (delta.delta.stop_reason, delta.usage.output_tokens) == ("end_turn", 4)


async def test_max_tokens_ends_the_reply_with_stop_reason_max_tokens(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    message = await anthropic_client.messages.create(model=MODEL, max_tokens=2, messages=HELLO)

    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello"
    assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", 2)


async def test_a_stop_sequence_is_reported_with_the_sequence_that_matched(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    async with anthropic_client.messages.stream(
        model=MODEL, max_tokens=100, messages=HELLO, stop_sequences=["zebra", "there"]
    ) as stream:
        final = await stream.get_final_message()

    assert final.content[0].type == "text"
    assert final.content[0].text == "Echo: hello"
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "there")


async def test_the_model_list_has_anthropic_s_shape(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    models = [model async for model in anthropic_client.models.list()]

    assert [model.id for model in models] == ["claude-sonnet-4-6", "claude-haiku-4-5"]
    assert {model.type for model in models} == {"model"}


async def test_a_wrong_key_is_an_authentication_error(anthropic_server: StandinServer) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=anthropic_server.base_url, api_key="wrong", max_retries=0
    ) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)

    assert _error_type(caught.value) == "authentication_error"


async def test_the_key_is_also_accepted_in_x_api_key(
    anthropic_server: StandinServer, standin_key: str
) -> None:
    headers = {"x-api-key": standin_key, "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}

    async with httpx.AsyncClient(base_url=anthropic_server.base_url) as client:
        accepted = await client.post("/v1/messages", headers=headers, json=body)
        versionless = await client.post(
            "/v1/messages", headers={"x-api-key": standin_key}, json=body
        )

    assert accepted.status_code == 200
    assert accepted.headers["request-id"] == f"req_{accepted.headers['x-standin-request-id']}"
    assert versionless.status_code == 400
    assert versionless.json()["error"]["message"] == "anthropic-version: header is required"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"messages": []}, "messages: at least one message is required"),
        (
            {"messages": [{"role": "system", "content": "hi"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        # anthropic 2.10's create() has no temperature argument any more; extra_body sends it.
        (
            {"extra_body": {"temperature": 1.5}},
            "temperature: Input should be less than or equal to 1",
        ),
    ],
)
async def test_an_invalid_request_is_a_bad_request_saying_what_is_wrong(
    anthropic_client: anthropic.AsyncAnthropic, change: dict[str, Any], message: str
) -> None:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": HELLO, **change}

    with pytest.raises(anthropic.BadRequestError) as caught:
        await anthropic_client.messages.create(**body)

    assert _error_type(caught.value) == "invalid_request_error"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["message"] == message


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_injected_errors_map_to_the_sdk_s_exceptions(
    anthropic_server: StandinServer,
    anthropic_client: anthropic.AsyncAnthropic,
    status: int,
    exception: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    anthropic_server.script(Fault.error(status))

    with pytest.raises(exception) as caught:
        await anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)

    assert caught.value.status_code == status
    assert _error_type(caught.value) == error_type


async def test_an_injected_429_carries_retry_after(
    anthropic_server: StandinServer, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Fault.rate_limited(retry_after_s=3))

    with pytest.raises(anthropic.RateLimitError) as caught:
        await anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)

    assert caught.value.response.headers["retry-after"] == "3"


async def test_a_connection_reset_is_a_connection_error(
    anthropic_server: StandinServer, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Fault.connection_reset())

    with pytest.raises(anthropic.APIConnectionError):
        await anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)

    assert anthropic_server.stats().outcomes == {"reset": 1}


async def test_a_stream_cut_mid_answer_fails_the_iteration(
    anthropic_server: StandinServer, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Fault.cut(after_tokens=2))
    stream = await anthropic_client.messages.create(
        model=MODEL, max_tokens=100, messages=HELLO, stream=True
    )
    request_id = stream.response.headers["x-standin-request-id"]
    deltas: list[str] = []

    # anthropic 2.10 lets the transport's error out of stream iteration unmapped
    # (httpx2.RemoteProtocolError, not anthropic.APIConnectionError); accept either.
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                deltas.append(event.delta.text)

    assert "".join(deltas) == "Echo: hello"
    record = await finished(anthropic_server, request_id)
    assert record.outcome == "cut"


async def test_a_stalled_stream_times_the_client_out_and_is_recorded_as_client_closed(
    anthropic_server: StandinServer, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Fault.stall(after_tokens=0))
    stream = await anthropic_client.with_options(timeout=0.5).messages.create(
        model=MODEL, max_tokens=100, messages=HELLO, stream=True
    )
    request_id = stream.response.headers["x-standin-request-id"]

    # As with cuts, anthropic 2.10 raises the transport's own timeout (httpx2.ReadTimeout).
    with pytest.raises((anthropic.APITimeoutError, httpx2.TimeoutException)):
        async for _ in stream:
            pass

    record = await finished(anthropic_server, request_id)
    assert (record.outcome, record.fault) == ("client_closed", "stall")


async def test_a_slow_reply_times_a_json_request_out(
    anthropic_server: StandinServer, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    # Far apart on purpose: the reply waits 20 s, the client gives up after 0.5 s.
    anthropic_server.set_profile(FaultProfile(latency_ms=20_000))

    with pytest.raises(anthropic.APITimeoutError):
        await anthropic_client.with_options(timeout=0.5).messages.create(
            model=MODEL, max_tokens=10, messages=HELLO
        )

    [record] = anthropic_server.stats().recent
    record = await finished(anthropic_server, record.id)
    assert (record.outcome, record.status) == ("client_closed", None)


def _error_type(error: anthropic.APIStatusError) -> object:
    assert isinstance(error.body, dict)
    return error.body["error"]["type"]


async def finished(server: StandinServer, request_id: str) -> RequestRecord:
    """The request's record once the stand-in has seen it end (within milliseconds)."""
    async with asyncio.timeout(5):
        return await server.wait_finished(request_id)
