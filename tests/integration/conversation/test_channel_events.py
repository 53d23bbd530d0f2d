"""Consuming the connectors' events: inbound channel messages and delivery updates."""

from __future__ import annotations

import uuid

import nats.js.errors
from nats.js import JetStreamContext

from conversation.channel_consumers import DELIVERY_DURABLE, INBOUND_DURABLE
from switchboard.connectors.v1 import connectors_pb2
from switchboard.connectors.v1 import events_pb2 as connector_events
from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard.conversation.v1 import events_pb2
from switchboard_runtime.event_streams import CONNECTORS, CONVERSATION
from switchboard_runtime.jetstream import ensure_stream, publish
from tests.integration.conversation.conftest import (
    ConversationUnderTest,
    StartConversation,
    TenantUnderTest,
    eventually,
    wait_for_events,
)
from tests.integration.conversation.fake_llm_router import FakeLlmRouter

CHANNEL = str(uuid.uuid4())


def _inbound(
    tenant: TenantUnderTest, bot_id: str, text: str, platform_id: str, contact: str = "tg-4242"
) -> connector_events.InboundMessageReceivedEvent:
    return connector_events.InboundMessageReceivedEvent(
        event_id=f"telegram:{platform_id}",
        tenant_id=tenant.tenant_id,
        channel_id=CHANNEL,
        platform=connectors_pb2.PLATFORM_TELEGRAM,
        bot_id=bot_id,
        external_contact_id=contact,
        contact_display_name="Tess Telegram",
        platform_message_id=platform_id,
        text=text,
    )


async def _publish_inbound(
    js: JetStreamContext, event: connector_events.InboundMessageReceivedEvent, msg_id: str = ""
) -> None:
    subject = CONNECTORS.subject("inbound_message_received", event.channel_id)
    await publish(js, subject, event.SerializeToString(), msg_id=msg_id or event.event_id)


async def _consumed(js: JetStreamContext, durable: str, count: int) -> None:
    """Until the consumer has been given `count` messages and acknowledged all of them."""

    async def done() -> bool:
        try:
            info = await js.consumer_info(CONNECTORS.name, durable)
        except nats.js.errors.NotFoundError:
            return False  # the service has not bound it yet
        return (
            info.delivered.stream_seq >= count and not info.num_ack_pending and not info.num_pending
        )

    await eventually(done, within=15, what=f"{durable} to consume {count} events")


async def _channel_messages(conversation: ConversationUnderTest) -> list[tuple[int, int, str]]:
    rows = await conversation.fetch(
        "SELECT m.sequence, m.author_kind, m.text FROM messages m"
        " JOIN conversations c USING (conversation_id) WHERE c.channel_id = $1"
        " ORDER BY m.conversation_id, m.sequence",
        CHANNEL,
    )
    return [(row["sequence"], row["author_kind"], row["text"]) for row in rows]


async def test_the_same_inbound_event_delivered_twice_stores_one_message_and_one_reply(
    conversation: ConversationUnderTest,
    tenant: TenantUnderTest,
    connectors_stream: JetStreamContext,
    llm_router: FakeLlmRouter,
) -> None:
    bot = await conversation.create_bot(tenant.owner)
    event = _inbound(tenant, bot.bot_id, "hi, is this the shop?", "1001")

    await _publish_inbound(connectors_stream, event)
    # The same event again, past JetStream's de-duplication (a re-sent webhook, much later).
    await _publish_inbound(connectors_stream, event, msg_id="telegram:1001:again")
    await _consumed(connectors_stream, INBOUND_DURABLE, 2)

    async def replied() -> list[tuple[int, int, str]]:
        found = await _channel_messages(conversation)
        return found if len(found) >= 2 else []

    assert await eventually(replied, what="the reply") == [
        (1, pb.AUTHOR_KIND_CONTACT, "hi, is this the shop?"),
        (2, pb.AUTHOR_KIND_BOT, "Echo: hi, is this the shop?"),
    ]
    assert len(llm_router.calls) == 1


async def test_an_inbound_message_opens_a_channel_conversation_whose_reply_names_the_contact(
    conversation: ConversationUnderTest,
    tenant: TenantUnderTest,
    connectors_stream: JetStreamContext,
) -> None:
    bot = await conversation.create_bot(tenant.owner)

    await _publish_inbound(connectors_stream, _inbound(tenant, bot.bot_id, "first", "1"))
    await _publish_inbound(connectors_stream, _inbound(tenant, bot.bot_id, "second", "2"))
    await _consumed(connectors_stream, INBOUND_DURABLE, 2)

    listed = await conversation.stub.ListConversations(
        pb.ListConversationsRequest(channel_id=CHANNEL), metadata=tenant.owner.auth
    )
    (chat,) = listed.conversations
    assert chat.kind == pb.CONVERSATION_KIND_CHANNEL and chat.bot_id == bot.bot_id
    assert (chat.channel_contact.external_contact_id, chat.channel_contact.display_name) == (
        "tg-4242",
        "Tess Telegram",
    )
    # The connectors deliver bot replies from these events, so they carry the contact.
    subject = CONVERSATION.subject("message_created", chat.conversation_id)
    events = await wait_for_events(connectors_stream, subject, 4)
    created = [events_pb2.MessageCreatedEvent.FromString(data) for _, data in events]
    replies = [e for e in created if e.message.author_kind == pb.AUTHOR_KIND_BOT]
    assert len(replies) == 2
    assert all(e.conversation_kind == pb.CONVERSATION_KIND_CHANNEL for e in replies)
    assert all(e.channel_contact.external_contact_id == "tg-4242" for e in replies)
    assert {e.message.platform_message_id for e in created} == {"1", "2", ""}


async def test_delivery_updates_move_a_status_forward_and_a_late_one_changes_nothing(
    conversation: ConversationUnderTest,
    tenant: TenantUnderTest,
    connectors_stream: JetStreamContext,
) -> None:
    bot = await conversation.create_bot(tenant.owner)
    await _publish_inbound(connectors_stream, _inbound(tenant, bot.bot_id, "hello", "7"))

    async def reply() -> list[tuple[str, str]]:
        rows = await conversation.fetch(
            "SELECT conversation_id, message_id FROM messages WHERE author_kind = $1",
            pb.AUTHOR_KIND_BOT,
        )
        return [(str(r["conversation_id"]), str(r["message_id"])) for r in rows]

    ((conversation_id, message_id),) = await eventually(reply, what="the bot's reply")
    updates = [
        (connectors_pb2.DELIVERY_STATUS_PENDING, ""),
        (connectors_pb2.DELIVERY_STATUS_SENT, "tg-out-1"),
        (connectors_pb2.DELIVERY_STATUS_READ, "tg-out-1"),
        (connectors_pb2.DELIVERY_STATUS_DELIVERED, "tg-out-1"),  # arrives late
    ]
    for number, (status, platform_id) in enumerate(updates):
        event = connector_events.DeliveryUpdatedEvent(
            event_id=f"delivery-{number}",
            tenant_id=tenant.tenant_id,
            delivery=connectors_pb2.Delivery(
                delivery_id=str(uuid.uuid4()),
                tenant_id=tenant.tenant_id,
                channel_id=CHANNEL,
                conversation_id=conversation_id,
                message_id=message_id,
                status=status,
                platform_message_id=platform_id,
            ),
        )
        subject = CONNECTORS.subject("delivery_updated", CHANNEL)
        await publish(connectors_stream, subject, event.SerializeToString(), msg_id=event.event_id)
    await _consumed(connectors_stream, DELIVERY_DURABLE, len(updates))

    got = await conversation.stub.GetMessage(
        pb.GetMessageRequest(conversation_id=conversation_id, message_id=message_id),
        metadata=tenant.owner.auth,
    )
    assert got.message.status == pb.MESSAGE_STATUS_READ
    assert got.message.platform_message_id == "tg-out-1"
    await conversation.wait_until_relayed()
    changes = await wait_for_events(
        connectors_stream, CONVERSATION.subject("message_status_changed", conversation_id), 2
    )
    assert [
        events_pb2.MessageStatusChangedEvent.FromString(data).change.status for _, data in changes
    ] == [pb.MESSAGE_STATUS_SENT, pb.MESSAGE_STATUS_READ]


async def test_the_service_starts_without_the_connectors_stream_and_consumes_once_it_exists(
    start_conversation: StartConversation,
    tenant: TenantUnderTest,
    connectors_stream: JetStreamContext,
) -> None:
    await connectors_stream.delete_stream(CONNECTORS.name)
    conversation = await start_conversation()  # the connectors service is not up yet
    bot = await conversation.create_bot(tenant.owner)

    await ensure_stream(connectors_stream, name=CONNECTORS.name, subjects=list(CONNECTORS.subjects))
    await _publish_inbound(connectors_stream, _inbound(tenant, bot.bot_id, "anyone?", "9"))

    async def stored() -> list[tuple[int, int, str]]:
        found = await _channel_messages(conversation)
        return found if len(found) >= 2 else []

    assert [text for _, _, text in await eventually(stored, what="the message")] == [
        "anyone?",
        "Echo: anyone?",
    ]


async def test_an_event_that_fails_is_redelivered_until_it_succeeds_and_a_poison_one_is_dropped(
    conversation: ConversationUnderTest,
    tenant: TenantUnderTest,
    connectors_stream: JetStreamContext,
) -> None:
    bot = await conversation.create_bot(tenant.owner)
    subject = CONNECTORS.subject("inbound_message_received", CHANNEL)
    await publish(connectors_stream, subject, b"\xff not protobuf", msg_id="poison")
    await _consumed(connectors_stream, INBOUND_DURABLE, 1)
    # The database goes away for a moment (the table is renamed), so handling fails.
    await conversation.fetch("ALTER TABLE messages RENAME TO messages_away")
    await _publish_inbound(connectors_stream, _inbound(tenant, bot.bot_id, "still there?", "5"))

    async def redelivered() -> bool:
        info = await connectors_stream.consumer_info(CONNECTORS.name, INBOUND_DURABLE)
        return info.num_redelivered >= 1

    await eventually(redelivered, what="a redelivery")
    await conversation.fetch("ALTER TABLE messages_away RENAME TO messages")
    await _consumed(connectors_stream, INBOUND_DURABLE, 2)

    async def stored() -> list[tuple[int, int, str]]:
        found = await _channel_messages(conversation)
        return found if len(found) >= 2 else []

    assert [text for _, _, text in await eventually(stored, what="the message")] == [
        "still there?",
        "Echo: still there?",
    ]
