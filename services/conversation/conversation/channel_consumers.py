"""Durable JetStream consumers of the connectors' events (stream CONNECTORS).

The connectors service declares that stream; until it has, the consumers wait and retry
binding in the background instead of failing the service. A message that cannot be decoded
(or names ids that are not UUIDs) is poison and terminated; a handler failure is nak'ed and
redelivered after a delay, for as long as it takes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext

from conversation.channel_events import ChannelEvents, DeliveryUpdate, InboundMessage
from conversation.domain import MessageStatus
from switchboard.connectors.v1 import connectors_pb2, events_pb2
from switchboard_runtime.event_streams import CONNECTORS
from switchboard_runtime.jetstream import Consumer, Delivery, ensure_durable_consumer

logger = logging.getLogger("conversation.consumers")

INBOUND_DURABLE: Final = "conversation-inbound-messages"
DELIVERY_DURABLE: Final = "conversation-delivery-updates"
INBOUND_SUBJECTS: Final = CONNECTORS.subject("inbound_message_received") + ".>"
DELIVERY_SUBJECTS: Final = CONNECTORS.subject("delivery_updated") + ".>"

_STATUSES: Final = {
    connectors_pb2.DELIVERY_STATUS_SENT: MessageStatus.SENT,
    connectors_pb2.DELIVERY_STATUS_DELIVERED: MessageStatus.DELIVERED,
    connectors_pb2.DELIVERY_STATUS_READ: MessageStatus.READ,
    connectors_pb2.DELIVERY_STATUS_FAILED: MessageStatus.FAILED,
}

T = TypeVar("T")


def _uuid(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{name} is not a UUID") from None


def decode_inbound(data: bytes) -> InboundMessage:
    event = events_pb2.InboundMessageReceivedEvent.FromString(data)
    if not event.external_contact_id:
        raise ValueError("external_contact_id is empty")
    return InboundMessage(
        event_id=event.event_id,
        tenant_id=_uuid(event.tenant_id, "tenant_id"),
        channel_id=_uuid(event.channel_id, "channel_id"),
        bot_id=_uuid(event.bot_id, "bot_id") if event.bot_id else None,
        external_contact_id=event.external_contact_id,
        contact_display_name=event.contact_display_name,
        platform_message_id=event.platform_message_id,
        text=event.text,
    )


def decode_delivery(data: bytes) -> DeliveryUpdate:
    event = events_pb2.DeliveryUpdatedEvent.FromString(data)
    delivery = event.delivery
    return DeliveryUpdate(
        tenant_id=_uuid(event.tenant_id, "tenant_id"),
        conversation_id=_uuid(delivery.conversation_id, "delivery.conversation_id"),
        message_id=_uuid(delivery.message_id, "delivery.message_id"),
        status=_STATUSES.get(delivery.status),
        failure_reason=delivery.last_error,
        platform_message_id=delivery.platform_message_id,
    )


class ChannelEventConsumers:
    """Runs the two consumers; `run_inbound` and `run_deliveries` are app background tasks."""

    def __init__(
        self,
        jetstream: Callable[[], JetStreamContext],
        channel_events: ChannelEvents,
        *,
        nak_delay_seconds: float,
        bind_retry_seconds: float,
        ack_wait_seconds: float = 30.0,
        fetch_timeout_seconds: float = 5.0,
    ) -> None:
        self._jetstream = jetstream
        self._events = channel_events
        self._nak_delay = nak_delay_seconds
        self._bind_retry = bind_retry_seconds
        self._ack_wait = ack_wait_seconds
        self._fetch_timeout = fetch_timeout_seconds

    async def run_inbound(self) -> None:
        await self._run(INBOUND_DURABLE, INBOUND_SUBJECTS, decode_inbound, self._on_inbound)

    async def run_deliveries(self) -> None:
        await self._run(DELIVERY_DURABLE, DELIVERY_SUBJECTS, decode_delivery, self._on_delivery)

    async def _on_inbound(self, delivery: Delivery[InboundMessage]) -> None:
        await self._events.receive_message(delivery.value)

    async def _on_delivery(self, delivery: Delivery[DeliveryUpdate]) -> None:
        await self._events.update_delivery(delivery.value)

    async def _run(
        self,
        durable: str,
        subjects: str,
        decode: Callable[[bytes], T],
        handler: Callable[[Delivery[T]], Awaitable[None]],
    ) -> None:
        waiting_logged = False
        while True:
            js = self._jetstream()
            try:
                await ensure_durable_consumer(
                    js,
                    stream=CONNECTORS.name,
                    durable=durable,
                    filter_subject=subjects,
                    ack_wait_seconds=self._ack_wait,
                )
                logger.info("consuming", extra={"consumer": durable, "subjects": subjects})
                waiting_logged = False
                await Consumer(
                    js,
                    stream=CONNECTORS.name,
                    durable=durable,
                    decode=decode,
                    handler=handler,
                    fetch_timeout_seconds=self._fetch_timeout,
                    nak_delay_seconds=self._nak_delay,
                ).run()
            except nats.js.errors.NotFoundError:
                if not waiting_logged:
                    logger.info(
                        "stream %s not there yet; will bind when it is",
                        CONNECTORS.name,
                        extra={"consumer": durable},
                    )
                    waiting_logged = True
            except (nats.errors.Error, OSError) as error:
                logger.warning(
                    "consumer interrupted; rebinding", exc_info=error, extra={"consumer": durable}
                )
            await asyncio.sleep(self._bind_retry)
