"""The record of messages: appending one idempotently, and moving a status forward.

Both write their event into the outbox in the same transaction, so a message or a status
change is published if and only if it was committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from conversation import events, messages_store
from conversation.conversations import readable_conversation
from conversation.domain import (
    Actor,
    Message,
    MessageStatus,
    NewMessage,
    StatusChange,
    moves_forward,
)
from conversation.errors import ConversationClosedError, NotFoundError
from conversation.messages_store import Appended, Replay
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import DbConnection, PoolSource

#: Rounds of "refused, but the reason went away" before giving up (a member added meanwhile).
_APPEND_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Posted:
    message: Message
    #: False when this was a replay of an idempotency key and `message` is the stored one.
    created: bool
    #: The conversation's bot, which replies to it (None: no bot).
    bot_id: str | None


class _RollBack(Exception):
    """Undo the sequence bump of a replayed append."""


class MessageLog:
    def __init__(self, db: PoolSource, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def post(self, actor: Actor, new: NewMessage, *, allow_closed: bool = False) -> Posted:
        """Append `new`, or return the message stored earlier under the same idempotency key."""
        async with self._db.pool.acquire() as conn:
            return await self.post_with(conn, actor, new, allow_closed=allow_closed)

    async def post_with(
        self,
        conn: DbConnection,
        actor: Actor,
        new: NewMessage,
        *,
        allow_closed: bool = False,
    ) -> Posted:
        """`post` on a connection the caller holds."""
        for _ in range(_APPEND_ATTEMPTS):
            try:
                async with conn.transaction():
                    outcome = await messages_store.append(
                        conn, new, actor, allow_closed=allow_closed
                    )
                    if isinstance(outcome, Replay):
                        raise _RollBack()
                    if isinstance(outcome, Appended):
                        await events.message_created(
                            conn,
                            outcome.message,
                            kind=outcome.kind,
                            channel_contact=outcome.channel_contact,
                        )
                        return Posted(outcome.message, created=True, bot_id=outcome.bot_id)
            except _RollBack:
                pass
            replayed = await self._replay(conn, actor, new)
            if replayed is not None:
                return replayed
            conversation = await readable_conversation(conn, actor, new.conversation_id)
            if not conversation.is_open and not allow_closed:
                raise ConversationClosedError()
        raise RuntimeError("append kept being refused for no visible reason")

    @staticmethod
    async def _replay(conn: DbConnection, actor: Actor, new: NewMessage) -> Posted | None:
        stored = await messages_store.by_idempotency_key(conn, new)
        if stored is None:
            return None
        # Only someone who may read that conversation learns the message exists.
        conversation = await readable_conversation(conn, actor, stored.conversation_id)
        return Posted(stored, created=False, bot_id=conversation.bot_id)

    async def change_status(
        self,
        actor: Actor,
        conversation_id: str,
        message_id: str,
        status: MessageStatus,
        *,
        failure_reason: str = "",
        platform_message_id: str = "",
    ) -> Message:
        """Move the message's status forward; an older or equal status is accepted and ignored."""
        now = self._clock.now()
        async with self._db.pool.acquire() as conn, conn.transaction():
            await readable_conversation(conn, actor, conversation_id)
            message = await messages_store.message_by_id(
                conn, actor.tenant_id, conversation_id, message_id, for_update=True
            )
            if message is None:
                raise NotFoundError("message not found")
            if not moves_forward(message.status, status):
                return message
            reason = failure_reason if status is MessageStatus.FAILED else ""
            updated = await messages_store.set_status(
                conn,
                message,
                status,
                failure_reason=reason,
                platform_message_id=platform_message_id,
                now=now,
            )
            change = StatusChange(
                conversation_id=conversation_id,
                message_id=message_id,
                status=status,
                previous_status=message.status,
                failure_reason=reason,
                updated_at=now,
            )
            await events.message_status_changed(conn, actor.tenant_id, change)
        return updated
