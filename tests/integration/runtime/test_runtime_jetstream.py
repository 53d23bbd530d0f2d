"""Streams, de-duplicated publishing and the pull consumer on a real JetStream server."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from switchboard_runtime import (
    Consumer,
    Delivery,
    connect_nats,
    ensure_durable_consumer,
    ensure_stream,
    publish,
    request_id_var,
)

_numbers = itertools.count()


@dataclass(frozen=True)
class Topic:
    """A stream with one subject and one durable consumer, unique to a test."""

    stream: str
    subject: str
    durable: str


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[Client]:
    client = await connect_nats(nats_url, name="runtime-tests")
    yield client
    await client.close()


@pytest.fixture
def js(nats_client: Client) -> JetStreamContext:
    return nats_client.jetstream()


@pytest.fixture
async def topic(js: JetStreamContext) -> Topic:
    number = next(_numbers)
    topic = Topic(
        stream=f"TEST_{number}", subject=f"test{number}.events", durable=f"worker{number}"
    )
    await ensure_stream(js, name=topic.stream, subjects=[topic.subject])
    await ensure_durable_consumer(
        js, stream=topic.stream, durable=topic.durable, filter_subject=topic.subject
    )
    return topic


def _consumer(
    js: JetStreamContext, topic: Topic, received: asyncio.Queue[Delivery[str]], *, fail_first: bool
) -> Consumer[str]:
    async def handle(delivery: Delivery[str]) -> None:
        await received.put(delivery)
        if fail_first and delivery.attempt == 1:
            raise TimeoutError("llm-router did not answer")

    return Consumer(
        js,
        stream=topic.stream,
        durable=topic.durable,
        decode=lambda data: data.decode("utf-8"),
        handler=handle,
        fetch_timeout_seconds=1.0,
        nak_delay_seconds=0.05,
    )


@pytest.fixture
async def received() -> asyncio.Queue[Delivery[str]]:
    return asyncio.Queue()


async def _next(received: asyncio.Queue[Delivery[str]]) -> Delivery[str]:
    return await asyncio.wait_for(received.get(), timeout=10)


async def test_ensure_stream_is_idempotent_and_applies_new_subjects(js: JetStreamContext) -> None:
    name = f"IDEMPOTENT_{next(_numbers)}"

    await ensure_stream(js, name=name, subjects=["idem.a"], max_age_seconds=60)
    await ensure_stream(js, name=name, subjects=["idem.a"], max_age_seconds=60)
    await ensure_stream(js, name=name, subjects=["idem.a", "idem.b"], max_age_seconds=60)

    info = await js.stream_info(name)
    assert info.config.subjects == ["idem.a", "idem.b"]
    assert info.config.max_age == 60
    assert info.config.storage == "file"


async def test_ensure_durable_consumer_is_idempotent_and_applies_new_settings(
    js: JetStreamContext, topic: Topic
) -> None:
    await ensure_durable_consumer(
        js, stream=topic.stream, durable=topic.durable, filter_subject=topic.subject
    )
    await ensure_durable_consumer(
        js,
        stream=topic.stream,
        durable=topic.durable,
        filter_subject=topic.subject,
        ack_wait_seconds=45,
        max_deliver=5,
        backoff_seconds=[1, 10],
    )

    info = await js.consumer_info(topic.stream, topic.durable)
    assert (info.config.max_deliver, info.config.backoff) == (5, [1, 10])
    assert info.config.ack_wait == 1, "JetStream takes the first backoff step as ack_wait"


async def test_publishing_the_same_msg_id_twice_stores_the_message_once(
    js: JetStreamContext, topic: Topic
) -> None:
    first = await publish(js, topic.subject, b"hello", msg_id="evt-1")
    second = await publish(js, topic.subject, b"hello", msg_id="evt-1")

    assert (first, second) == (False, True)
    assert (await js.stream_info(topic.stream)).state.messages == 1


async def test_the_consumer_hands_over_each_message_once_and_acknowledges_it(
    js: JetStreamContext, topic: Topic, received: asyncio.Queue[Delivery[str]]
) -> None:
    token = request_id_var.set("req-evt")
    try:
        await publish(js, topic.subject, b"first", msg_id="m-1")
    finally:
        request_id_var.reset(token)
    await publish(js, topic.subject, b"second", msg_id="m-2")
    consumer = _consumer(js, topic, received, fail_first=False)

    await consumer.start()
    try:
        first, second = await _next(received), await _next(received)
    finally:
        await consumer.stop()

    assert (first.value, first.msg_id, first.attempt) == ("first", "m-1", 1)
    assert first.headers.get("x-request-id") == "req-evt"
    assert second.value == "second"
    # Messages are handled in order and each ack is confirmed before the next message, so the
    # server has recorded the first one as done by now.
    info = await js.consumer_info(topic.stream, topic.durable)
    assert info.ack_floor.stream_seq >= first.stream_sequence
    assert info.num_redelivered == 0


async def test_a_message_whose_handler_fails_is_redelivered(
    js: JetStreamContext, topic: Topic, received: asyncio.Queue[Delivery[str]]
) -> None:
    await publish(js, topic.subject, b"needs a retry", msg_id="r-1")
    consumer = _consumer(js, topic, received, fail_first=True)

    await consumer.start()
    try:
        first, retry = await _next(received), await _next(received)
    finally:
        await consumer.stop()

    assert (first.attempt, retry.attempt) == (1, 2)
    assert retry.value == "needs a retry"
    assert retry.stream_sequence == first.stream_sequence


async def test_a_message_that_cannot_be_decoded_is_terminated_and_skipped(
    nats_client: Client,
    js: JetStreamContext,
    topic: Topic,
    received: asyncio.Queue[Delivery[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    advisories = await nats_client.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{topic.stream}.{topic.durable}"
    )
    await publish(js, topic.subject, b"\xff\xfe not utf-8", msg_id="p-1")
    await publish(js, topic.subject, b"after the poison", msg_id="p-2")
    consumer = _consumer(js, topic, received, fail_first=False)

    await consumer.start()
    try:
        advisory = await advisories.next_msg(timeout=10)
        handled = await _next(received)
    finally:
        await consumer.stop()
        await advisories.unsubscribe()

    assert json.loads(advisory.data)["stream_seq"] == 1
    assert handled.value == "after the poison"
    assert received.empty()
    (report,) = [r for r in caplog.records if r.getMessage() == "poison message terminated"]
    assert report.levelname == "ERROR"
    assert report.exc_info is not None and report.exc_info[0] is UnicodeDecodeError


async def test_connect_nats_gives_up_when_no_server_answers_in_time() -> None:
    with pytest.raises(TimeoutError):
        await connect_nats("nats://127.0.0.1:1", name="nobody-home", connect_timeout_seconds=0.5)
