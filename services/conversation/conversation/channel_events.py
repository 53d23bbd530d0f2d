"""Use cases driven by the connectors' events: a contact wrote on a channel; a delivery moved.

Both are idempotent, because events arrive at least once: an inbound message is stored once
per channel and platform message id, and its reply is generated unless one is stored or under
way; a delivery update only ever moves a status forward.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Final

from conversation import conversations_store, events
from conversation.access import system_actor
from conversation.domain import (
    AuthorKind,
    ChannelContact,
    Conversation,
    ConversationKind,
    MessageStatus,
    NewMessage,
)
from conversation.errors import NotFoundError
from conversation.message_log import MessageLog, Posted
from conversation.replies import Replies
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import DbConnection, PoolSource

logger = logging.getLogger("conversation.channels")

_FIND_OR_CREATE_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class InboundMessage:
    event_id: str
    tenant_id: str
    channel_id: str
    bot_id: str | None
    external_contact_id: str
    contact_display_name: str
    platform_message_id: str
    text: str


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    tenant_id: str
    conversation_id: str
    message_id: str
    #: None: nothing to record yet (the delivery is pending).
    status: MessageStatus | None
    failure_reason: str
    platform_message_id: str


class ChannelEvents:
    def __init__(self, db: PoolSource, *, log: MessageLog, replies: Replies, clock: Clock) -> None:
        self._db = db
        self._log = log
        self._replies = replies
        self._clock = clock

    async def receive_message(self, inbound: InboundMessage) -> Posted:
        """Store the contact's message in the open conversation with that contact (opened
        if there is none), and have the channel's bot reply."""
        actor = system_actor(inbound.tenant_id)
        async with self._db.pool.acquire() as conn:
            conversation = await self._channel_conversation(conn, inbound)
            if inbound.platform_message_id:
                key, channel = f"platform:{inbound.platform_message_id}", inbound.channel_id
            else:
                key, channel = f"event:{inbound.event_id}", None
            new = NewMessage(
                message_id=str(uuid.uuid4()),
                conversation_id=conversation.conversation_id,
                tenant_id=inbound.tenant_id,
                client_message_id=key,
                author_kind=AuthorKind.CONTACT,
                author_id=inbound.external_contact_id,
                text=inbound.text,
                created_at=self._clock.now(),
                platform_message_id=inbound.platform_message_id,
                inbound_channel_id=channel,
            )
            posted = await self._log.post_with(conn, actor, new)
        message = posted.message
        if (
            posted.bot_id is not None
            and message.text
            and (
                posted.created
                or await self._replies.reply_needed(
                    inbound.tenant_id, message.conversation_id, message.message_id
                )
            )
        ):
            self._replies.start(inbound.tenant_id, message.conversation_id, posted.bot_id, message)
        return posted

    async def _channel_conversation(
        self, conn: DbConnection, inbound: InboundMessage
    ) -> Conversation:
        for _ in range(_FIND_OR_CREATE_ATTEMPTS):
            found = await conversations_store.open_channel_conversation(
                conn, inbound.tenant_id, inbound.channel_id, inbound.external_contact_id
            )
            if found is not None:
                return found
            conversation = Conversation(
                conversation_id=str(uuid.uuid4()),
                tenant_id=inbound.tenant_id,
                kind=ConversationKind.CHANNEL,
                title=inbound.contact_display_name,
                bot_id=inbound.bot_id,
                member_user_ids=(),
                channel_contact=ChannelContact(
                    channel_id=inbound.channel_id,
                    external_contact_id=inbound.external_contact_id,
                    display_name=inbound.contact_display_name,
                ),
                created_by="conversation",
                last_sequence=0,
                created_at=self._clock.now(),
            )
            async with conn.transaction():
                if await conversations_store.insert_conversation(
                    conn, conversation, if_absent=True
                ):
                    await events.conversation_created(conn, conversation)
                    return conversation
            # Another delivery opened it first: read theirs.
        raise RuntimeError("could not find or open the channel conversation")

    async def update_delivery(self, update: DeliveryUpdate) -> None:
        if update.status is None:
            return
        try:
            await self._log.change_status(
                system_actor(update.tenant_id),
                update.conversation_id,
                update.message_id,
                update.status,
                failure_reason=update.failure_reason,
                platform_message_id=update.platform_message_id,
            )
        except NotFoundError:
            # Retrying cannot make an unknown message appear: record it and move on.
            logger.warning(
                "delivery update for an unknown message ignored",
                extra={"conversation_id": update.conversation_id, "message_id": update.message_id},
            )
