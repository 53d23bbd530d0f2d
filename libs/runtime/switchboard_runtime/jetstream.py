"""NATS JetStream: connecting, declaring streams and durable consumers, publishing with
de-duplication ids, and a pull-consumer loop that acks, retries and discards poison messages.

Events are at-least-once: a consumer's handler may see a message again (after a crash, a
timeout or a nak), so handlers must be idempotent. Publishing carries the trace context and
the request id in message headers, and `Consumer` restores both around the handler, so logs
and traces follow an event from the producing request to its consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from opentelemetry import propagate, trace

from switchboard_runtime.redaction import redact_url
from switchboard_runtime.request_context import REQUEST_ID_HEADER, request_id_var

__all__ = [
    "MSG_ID_HEADER",
    "Consumer",
    "Delivery",
    "connect_nats",
    "ensure_durable_consumer",
    "ensure_stream",
    "publish",
]

logger = logging.getLogger("switchboard.jetstream")
_tracer = trace.get_tracer("switchboard.jetstream")

MSG_ID_HEADER: Final = "Nats-Msg-Id"
_STREAM_NAME_IN_USE: Final = 10058  # JetStream error code: stream exists with another config

T = TypeVar("T")


def _reconnect_with_backoff(servers: list[Any], info: dict[str, Any]) -> tuple[Any, float]:
    # Exponential backoff with jitter per server, so a fleet of replicas does not reconnect
    # to a restarted NATS in lockstep; capped so recovery is noticed within seconds.
    server = min(servers, key=lambda candidate: candidate.reconnects)
    delay = min(0.1 * 2**server.reconnects, 5.0) * random.uniform(0.5, 1.0)
    return server, delay


async def connect_nats(url: str, *, name: str, connect_timeout_seconds: float = 30.0) -> Client:
    """Connect to NATS (`url` may list servers separated by commas) and reconnect forever.

    The first connection must succeed within `connect_timeout_seconds`; afterwards the client
    reconnects with backoff for as long as the process runs, logging each disconnect and
    reconnect without credentials.
    """
    servers = [server.strip() for server in url.split(",") if server.strip()]
    shown = ", ".join(redact_url(server) for server in servers)
    client = Client()

    async def on_error(error: Exception) -> None:
        logger.warning("nats connection error", exc_info=error, extra={"servers": shown})

    async def on_disconnected() -> None:
        if client.is_closed:  # our own close() at shutdown, not an outage
            logger.info("nats connection closed", extra={"servers": shown})
        else:
            logger.warning("nats disconnected", extra={"servers": shown})

    async def on_reconnected() -> None:
        current = client.connected_url.geturl() if client.connected_url else ""
        logger.info("nats reconnected", extra={"server": redact_url(current)})

    try:
        await asyncio.wait_for(
            client.connect(
                servers=servers,
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_to_server_handler=_reconnect_with_backoff,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
            ),
            timeout=connect_timeout_seconds,
        )
    except BaseException:
        await client.close()
        raise
    logger.info("nats connected", extra={"servers": shown})
    return client


async def ensure_stream(
    js: JetStreamContext,
    *,
    name: str,
    subjects: list[str],
    max_age_seconds: float | None = None,
    duplicate_window_seconds: float = 120,
) -> None:
    """Create the file-backed stream `name`, or update it to this configuration.

    The de-duplication window is capped at `max_age_seconds`, which JetStream requires.
    """
    if max_age_seconds is not None:
        duplicate_window_seconds = min(duplicate_window_seconds, max_age_seconds)
    config = StreamConfig(
        name=name,
        subjects=subjects,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=max_age_seconds,
        duplicate_window=duplicate_window_seconds,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as error:
        if error.err_code != _STREAM_NAME_IN_USE:
            raise
        await js.update_stream(config)


async def ensure_durable_consumer(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    filter_subject: str,
    ack_wait_seconds: float = 30,
    max_deliver: int = -1,
    backoff_seconds: list[float] | None = None,
) -> None:
    """Create the durable pull consumer `durable` on `stream`, or update its configuration.

    `backoff_seconds` spaces out redeliveries of unacknowledged messages (it needs a
    `max_deliver` larger than its length); `max_deliver=-1` redelivers forever.
    """
    config = ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subject=filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_seconds,
        max_deliver=max_deliver,
        backoff=backoff_seconds,
    )
    await js.add_consumer(stream, config)


async def publish(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    *,
    msg_id: str,
    headers: dict[str, str] | None = None,
    ack_timeout_seconds: float | None = None,
) -> bool:
    """Publish to JetStream and wait for the ack; return True if `msg_id` was a duplicate.

    The stream drops a message whose `msg_id` it saw within its duplicate window, which
    makes retried publishes (and the outbox relay) safe.
    """
    all_headers = dict(headers or {})
    propagate.inject(all_headers)
    request_id = request_id_var.get()
    if request_id is not None:
        all_headers.setdefault(REQUEST_ID_HEADER, request_id)
    all_headers[MSG_ID_HEADER] = msg_id
    ack = await js.publish(subject, payload, timeout=ack_timeout_seconds, headers=all_headers)
    return bool(ack.duplicate)


@dataclass(frozen=True, slots=True)
class Delivery(Generic[T]):
    """One decoded message as a `Consumer` handler sees it."""

    value: T
    subject: str
    headers: Mapping[str, str]
    msg_id: str | None
    attempt: int
    """1 on first delivery, 2 on the first redelivery, and so on."""
    stream_sequence: int


class Consumer(Generic[T]):
    """Runs a durable pull consumer: decode, handle, then ack / nak / term each message.

    Messages are handled one at a time, in order. A handled message is acknowledged with a
    confirmed ack (the loop waits for the server to record it), so once the next message is
    being handled the previous one will not come back. A message that fails to decode is
    poison: it is terminated (never redelivered) and logged. A handler exception is logged and
    the message is nak'ed for redelivery after `nak_delay_seconds`. Use `run` as an app
    background task, or `start`/`stop` directly.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        decode: Callable[[bytes], T],
        handler: Callable[[Delivery[T]], Awaitable[None]],
        batch_size: int = 10,
        fetch_timeout_seconds: float = 5.0,
        nak_delay_seconds: float = 5.0,
        ack_timeout_seconds: float = 5.0,
    ) -> None:
        self._js = js
        self._stream = stream
        self._durable = durable
        self._decode = decode
        self._handler = handler
        self._batch_size = batch_size
        self._fetch_timeout = fetch_timeout_seconds
        self._nak_delay = nak_delay_seconds
        self._ack_timeout = ack_timeout_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the fetch loop in a task this consumer owns until `stop()`."""
        if self._task is not None:
            raise RuntimeError("consumer already started")
        self._task = asyncio.create_task(self.run(), name=f"consumer:{self._durable}")

    async def stop(self) -> None:
        """Cancel the fetch loop and wait for it; an unfinished message is redelivered later."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run(self) -> None:
        """Fetch and process messages until cancelled."""
        subscription = await self._js.pull_subscribe_bind(
            durable=self._durable, stream=self._stream
        )
        failures = 0
        try:
            while True:
                try:
                    messages = await subscription.fetch(
                        self._batch_size, timeout=self._fetch_timeout
                    )
                except nats.errors.TimeoutError:
                    continue  # nothing to do within the fetch window
                except nats.errors.Error as error:
                    # Typically a reconnect in progress; back off instead of spinning.
                    failures += 1
                    logger.warning(
                        "fetch failed", exc_info=error, extra={"consumer": self._durable}
                    )
                    await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                    continue
                failures = 0
                for message in messages:
                    await self._process(message)
        finally:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()

    async def _process(self, message: Msg) -> None:
        headers = dict(message.headers or {})
        metadata = message.metadata
        fields = {
            "consumer": self._durable,
            "subject": message.subject,
            "stream_sequence": metadata.sequence.stream,
            "attempt": metadata.num_delivered,
        }
        try:
            value = self._decode(message.data)
        except Exception as error:
            logger.error("poison message terminated", exc_info=error, extra=fields)
            await self._settle(message.term(), fields)
            return
        delivery = Delivery(
            value=value,
            subject=message.subject,
            headers=headers,
            msg_id=headers.get(MSG_ID_HEADER),
            attempt=metadata.num_delivered,
            stream_sequence=metadata.sequence.stream,
        )
        token = request_id_var.set(headers.get(REQUEST_ID_HEADER))
        try:
            with _tracer.start_as_current_span(
                f"{message.subject} process",
                context=propagate.extract(headers),
                kind=trace.SpanKind.CONSUMER,
            ):
                try:
                    await self._handler(delivery)
                except Exception as error:
                    logger.warning(
                        "handler failed; message will be redelivered", exc_info=error, extra=fields
                    )
                    await self._settle(message.nak(delay=self._nak_delay), fields)
                    return
                await self._settle(message.ack_sync(timeout=self._ack_timeout), fields)
        finally:
            request_id_var.reset(token)

    @staticmethod
    async def _settle(outcome: Awaitable[object], fields: dict[str, Any]) -> None:
        try:
            await outcome
        except nats.errors.Error as error:
            # The server redelivers after ack_wait anyway; losing the connection here must not
            # stop the loop.
            logger.warning("could not settle message", exc_info=error, extra=fields)
