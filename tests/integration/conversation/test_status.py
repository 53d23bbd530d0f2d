"""A message's status only moves forward, and every move is published."""

from __future__ import annotations

from nats.aio.client import Client

from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard.conversation.v1 import events_pb2
from switchboard_runtime.event_streams import CONVERSATION
from tests.integration.conversation.conftest import (
    ConversationUnderTest,
    Person,
    TenantUnderTest,
    stored_events,
    wait_for_events,
)


async def _set(
    conversation: ConversationUnderTest,
    who: Person,
    message: pb.Message,
    status: pb.MessageStatus.ValueType,
    reason: str = "",
) -> pb.Message:
    response = await conversation.stub.UpdateMessageStatus(
        pb.UpdateMessageStatusRequest(
            conversation_id=message.conversation_id,
            message_id=message.message_id,
            status=status,
            failure_reason=reason,
        ),
        metadata=who.auth,
    )
    return response.message


async def test_a_late_delivered_after_read_is_accepted_and_the_message_stays_read(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, nats_client: Client
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    sent = (await conversation.send(alice, group.conversation_id, "did you see this?")).message

    read = await _set(conversation, bob, sent, pb.MESSAGE_STATUS_READ)
    late = await _set(conversation, bob, sent, pb.MESSAGE_STATUS_DELIVERED)

    assert read.status == late.status == pb.MESSAGE_STATUS_READ
    stored = await conversation.messages_in(group.conversation_id)
    assert [row["status"] for row in stored] == [pb.MESSAGE_STATUS_READ]
    # Once everything committed is published, the stream holds one change: the ignored
    # update published nothing.
    await conversation.wait_until_relayed()
    subject = CONVERSATION.subject("message_status_changed", group.conversation_id)
    (event,) = await stored_events(nats_client.jetstream(), subject)
    changed = events_pb2.MessageStatusChangedEvent.FromString(event[1])
    assert (changed.previous_status, changed.change.status) == (
        pb.MESSAGE_STATUS_ACCEPTED,
        pb.MESSAGE_STATUS_READ,
    )
    assert changed.tenant_id == tenant.tenant_id


async def test_failed_is_final_and_keeps_its_reason(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    sent = (await conversation.send(alice, group.conversation_id, "hello")).message

    handed = await _set(conversation, alice, sent, pb.MESSAGE_STATUS_SENT)
    failed = await _set(conversation, alice, sent, pb.MESSAGE_STATUS_FAILED, "recipient blocked us")
    after = await _set(conversation, alice, sent, pb.MESSAGE_STATUS_READ)

    assert handed.status == pb.MESSAGE_STATUS_SENT
    assert (failed.status, failed.failure_reason) == (
        pb.MESSAGE_STATUS_FAILED,
        "recipient blocked us",
    )
    assert (after.status, after.failure_reason) == (
        pb.MESSAGE_STATUS_FAILED,
        "recipient blocked us",
    )


async def test_each_forward_step_is_published_in_order(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, nats_client: Client
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    sent = (await conversation.send(alice, group.conversation_id, "hello")).message

    for status in (pb.MESSAGE_STATUS_SENT, pb.MESSAGE_STATUS_DELIVERED, pb.MESSAGE_STATUS_READ):
        await _set(conversation, bob, sent, status)

    subject = CONVERSATION.subject("message_status_changed", group.conversation_id)
    events = await wait_for_events(nats_client.jetstream(), subject, 3)
    steps = [
        (e.previous_status, e.change.status)
        for e in (events_pb2.MessageStatusChangedEvent.FromString(data) for _, data in events)
    ]
    assert steps == [
        (pb.MESSAGE_STATUS_ACCEPTED, pb.MESSAGE_STATUS_SENT),
        (pb.MESSAGE_STATUS_SENT, pb.MESSAGE_STATUS_DELIVERED),
        (pb.MESSAGE_STATUS_DELIVERED, pb.MESSAGE_STATUS_READ),
    ]
