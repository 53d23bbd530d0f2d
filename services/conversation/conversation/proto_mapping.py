"""Conversions between the conversation domain and its protobuf messages (API and events)."""

from __future__ import annotations

from conversation.domain import (
    AuthorKind,
    Bot,
    ChannelContact,
    Conversation,
    ConversationKind,
    HistoryWindow,
    Message,
    MessageStatus,
    ReplyDelta,
    StatusChange,
)
from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard_runtime.proto_time import from_timestamp, timestamp


def bot_pb(bot: Bot) -> pb.Bot:
    message = pb.Bot(
        bot_id=bot.bot_id,
        tenant_id=bot.tenant_id,
        name=bot.name,
        system_prompt=bot.system_prompt,
        model=bot.model,
        history_window=pb.HistoryWindow(
            max_messages=bot.history.max_messages, max_tokens=bot.history.max_tokens
        ),
        create_time=timestamp(bot.created_at),
        update_time=timestamp(bot.updated_at),
    )
    if bot.temperature is not None:
        message.temperature = bot.temperature
    if bot.top_p is not None:
        message.top_p = bot.top_p
    if bot.max_tokens is not None:
        message.max_tokens = bot.max_tokens
    return message


def bot_settings(bot: pb.Bot) -> dict[str, object]:
    """The settable fields of a Bot message, as `Bot` field values."""
    return {
        "name": bot.name,
        "system_prompt": bot.system_prompt,
        "model": bot.model,
        "temperature": bot.temperature if bot.HasField("temperature") else None,
        "top_p": bot.top_p if bot.HasField("top_p") else None,
        "max_tokens": bot.max_tokens if bot.HasField("max_tokens") else None,
        "history": HistoryWindow(
            max_messages=bot.history_window.max_messages,
            max_tokens=bot.history_window.max_tokens,
        ),
    }


#: The update_mask paths of a Bot and the `Bot` fields they set.
BOT_MASK_FIELDS = {
    "name": "name",
    "system_prompt": "system_prompt",
    "model": "model",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "history_window": "history",
}


def channel_contact_pb(contact: ChannelContact | None) -> pb.ChannelContact | None:
    if contact is None:
        return None
    return pb.ChannelContact(
        channel_id=contact.channel_id,
        external_contact_id=contact.external_contact_id,
        display_name=contact.display_name,
    )


def channel_contact_of(contact: pb.ChannelContact) -> ChannelContact:
    return ChannelContact(
        channel_id=contact.channel_id,
        external_contact_id=contact.external_contact_id,
        display_name=contact.display_name,
    )


def conversation_pb(conversation: Conversation) -> pb.Conversation:
    return pb.Conversation(
        conversation_id=conversation.conversation_id,
        tenant_id=conversation.tenant_id,
        kind=pb.ConversationKind.ValueType(int(conversation.kind)),
        title=conversation.title,
        bot_id=conversation.bot_id or "",
        member_user_ids=list(conversation.member_user_ids),
        channel_contact=channel_contact_pb(conversation.channel_contact),
        state=pb.CONVERSATION_STATE_OPEN if conversation.is_open else pb.CONVERSATION_STATE_CLOSED,
        last_sequence=conversation.last_sequence,
        create_time=timestamp(conversation.created_at),
        close_time=timestamp(conversation.closed_at),
    )


def conversation_kind_pb(kind: ConversationKind) -> pb.ConversationKind.ValueType:
    return pb.ConversationKind.ValueType(int(kind))


def message_pb(message: Message) -> pb.Message:
    return pb.Message(
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        tenant_id=message.tenant_id,
        sequence=message.sequence,
        client_message_id=message.client_message_id,
        author_kind=pb.AuthorKind.ValueType(int(message.author_kind)),
        author_id=message.author_id,
        text=message.text,
        status=pb.MessageStatus.ValueType(int(message.status)),
        failure_reason=message.failure_reason,
        reply_to_message_id=message.reply_to_message_id or "",
        platform_message_id=message.platform_message_id,
        create_time=timestamp(message.created_at),
        update_time=timestamp(message.updated_at),
    )


def message_of(message: pb.Message) -> Message:
    return Message(
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        tenant_id=message.tenant_id,
        sequence=message.sequence,
        client_message_id=message.client_message_id,
        author_kind=AuthorKind(message.author_kind),
        author_id=message.author_id,
        text=message.text,
        status=MessageStatus(message.status),
        failure_reason=message.failure_reason,
        reply_to_message_id=message.reply_to_message_id or None,
        platform_message_id=message.platform_message_id,
        created_at=from_timestamp(message.create_time),
        updated_at=from_timestamp(message.update_time),
    )


def status_change_pb(change: StatusChange) -> pb.MessageStatusChange:
    return pb.MessageStatusChange(
        conversation_id=change.conversation_id,
        message_id=change.message_id,
        status=pb.MessageStatus.ValueType(int(change.status)),
        failure_reason=change.failure_reason,
        update_time=timestamp(change.updated_at),
    )


def status_change_of(
    change: pb.MessageStatusChange, previous: pb.MessageStatus.ValueType
) -> StatusChange:
    return StatusChange(
        conversation_id=change.conversation_id,
        message_id=change.message_id,
        status=MessageStatus(change.status),
        previous_status=MessageStatus(previous) if previous else MessageStatus.ACCEPTED,
        failure_reason=change.failure_reason,
        updated_at=from_timestamp(change.update_time),
    )


def reply_delta_pb(delta: ReplyDelta) -> pb.ReplyDelta:
    return pb.ReplyDelta(
        conversation_id=delta.conversation_id,
        reply_to_message_id=delta.reply_to_message_id,
        reply_message_id=delta.reply_message_id,
        index=delta.index,
        text=delta.text,
    )


def reply_delta_of(delta: pb.ReplyDelta) -> ReplyDelta:
    return ReplyDelta(
        conversation_id=delta.conversation_id,
        reply_to_message_id=delta.reply_to_message_id,
        reply_message_id=delta.reply_message_id,
        index=delta.index,
        text=delta.text,
    )
