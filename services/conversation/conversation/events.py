"""The conversation service's events, queued in its outbox in the transaction of the change.

Each is keyed by its conversation (`conversation.v1.<event>.<conversation_id>`); the outbox
relay publishes them in commit order, which within one conversation is sequence order.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from conversation.domain import (
    ChannelContact,
    Conversation,
    ConversationKind,
    Message,
    StatusChange,
)
from conversation.proto_mapping import (
    channel_contact_pb,
    conversation_kind_pb,
    conversation_pb,
    message_pb,
    status_change_pb,
)
from switchboard.conversation.v1 import conversation_pb2, events_pb2
from switchboard_runtime.datastores import DbConnection
from switchboard_runtime.event_streams import CONVERSATION
from switchboard_runtime.outbox import add_event
from switchboard_runtime.proto_time import timestamp

MESSAGE_CREATED = "message_created"
MESSAGE_STATUS_CHANGED = "message_status_changed"
CONVERSATION_CREATED = "conversation_created"
CONVERSATION_CLOSED = "conversation_closed"


async def message_created(
    conn: DbConnection,
    message: Message,
    *,
    kind: ConversationKind,
    channel_contact: ChannelContact | None,
) -> None:
    event_id = str(uuid.uuid4())
    event = events_pb2.MessageCreatedEvent(
        event_id=event_id,
        tenant_id=message.tenant_id,
        occur_time=timestamp(message.created_at),
        message=message_pb(message),
        conversation_kind=conversation_kind_pb(kind),
        channel_contact=channel_contact_pb(channel_contact),
    )
    subject = CONVERSATION.subject(MESSAGE_CREATED, message.conversation_id)
    await add_event(conn, subject, event, event_id=event_id)


async def message_status_changed(conn: DbConnection, tenant_id: str, change: StatusChange) -> None:
    event_id = str(uuid.uuid4())
    event = events_pb2.MessageStatusChangedEvent(
        event_id=event_id,
        tenant_id=tenant_id,
        occur_time=timestamp(change.updated_at),
        change=status_change_pb(change),
        previous_status=conversation_pb2.MessageStatus.ValueType(int(change.previous_status)),
    )
    subject = CONVERSATION.subject(MESSAGE_STATUS_CHANGED, change.conversation_id)
    await add_event(conn, subject, event, event_id=event_id)


async def conversation_created(conn: DbConnection, conversation: Conversation) -> None:
    event_id = str(uuid.uuid4())
    event = events_pb2.ConversationCreatedEvent(
        event_id=event_id,
        tenant_id=conversation.tenant_id,
        occur_time=timestamp(conversation.created_at),
        conversation=conversation_pb(conversation),
    )
    subject = CONVERSATION.subject(CONVERSATION_CREATED, conversation.conversation_id)
    await add_event(conn, subject, event, event_id=event_id)


async def conversation_closed(
    conn: DbConnection, conversation: Conversation, now: datetime
) -> None:
    event_id = str(uuid.uuid4())
    event = events_pb2.ConversationClosedEvent(
        event_id=event_id,
        tenant_id=conversation.tenant_id,
        occur_time=timestamp(now),
        conversation=conversation_pb(conversation),
    )
    subject = CONVERSATION.subject(CONVERSATION_CLOSED, conversation.conversation_id)
    await add_event(conn, subject, event, event_id=event_id)
