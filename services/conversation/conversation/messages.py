"""Use cases of messages: send (and stream the bot's reply), get, list, update status."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Final

from conversation import messages_store
from conversation.conversations import readable_conversation
from conversation.domain import Actor, Message, MessageStatus, NewMessage
from conversation.errors import FailedPreconditionError, NotFoundError
from conversation.message_log import MessageLog, Posted
from conversation.replies import Replies, ReplyCompleted, ReplyEvent
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import PoolSource
from switchboard_runtime.pagination import (
    InvalidPageTokenError,
    decode_page_token,
    encode_page_token,
    page_size,
)

_ASCENDING: Final = "asc"
_DESCENDING: Final = "desc"


class Messages:
    def __init__(self, db: PoolSource, *, log: MessageLog, replies: Replies, clock: Clock) -> None:
        self._db = db
        self._log = log
        self._replies = replies
        self._clock = clock

    def _new(
        self, actor: Actor, conversation_id: str, client_message_id: str, text: str
    ) -> NewMessage:
        return NewMessage(
            message_id=str(uuid.uuid4()),
            conversation_id=conversation_id,
            tenant_id=actor.tenant_id,
            client_message_id=client_message_id,
            author_kind=actor.author_kind,
            author_id=actor.subject,
            text=text,
            created_at=self._clock.now(),
        )

    async def send(
        self, actor: Actor, conversation_id: str, *, client_message_id: str, text: str
    ) -> Posted:
        """Store the message; if the conversation has a bot, its reply follows in the background."""
        posted = await self._log.post(
            actor, self._new(actor, conversation_id, client_message_id, text)
        )
        if posted.created and posted.bot_id is not None:
            self._replies.start(actor.tenant_id, conversation_id, posted.bot_id, posted.message)
        return posted

    async def send_and_stream(
        self, actor: Actor, conversation_id: str, *, client_message_id: str, text: str
    ) -> AsyncGenerator[Message | ReplyEvent, None]:
        """The stored message first, then the reply's deltas, then the stored reply.

        A retried call (same client_message_id) gets the stored message and joins the reply
        under way, or gets the stored reply, or starts it if it never was.
        """
        async with self._db.pool.acquire() as conn:
            conversation = await readable_conversation(conn, actor, conversation_id)
        if conversation.bot_id is None:
            raise FailedPreconditionError("the conversation has no bot to reply")
        posted = await self._log.post(
            actor, self._new(actor, conversation_id, client_message_id, text)
        )
        yield posted.message
        bot_id = posted.bot_id or conversation.bot_id
        message = posted.message
        stream = None if posted.created else self._replies.join(message.message_id)
        if stream is None:
            if not posted.created:
                async with self._db.pool.acquire() as conn:
                    stored = await messages_store.reply_to(
                        conn, actor.tenant_id, conversation_id, message.message_id
                    )
                if stored is not None:
                    yield ReplyCompleted(stored)
                    return
            stream = self._replies.start(actor.tenant_id, conversation_id, bot_id, message)
        async for event in stream:
            yield event

    async def get(self, actor: Actor, conversation_id: str, message_id: str) -> Message:
        async with self._db.pool.acquire() as conn:
            await readable_conversation(conn, actor, conversation_id)
            message = await messages_store.message_by_id(
                conn, actor.tenant_id, conversation_id, message_id
            )
        if message is None:
            raise NotFoundError("message not found")
        return message

    async def list(
        self,
        actor: Actor,
        conversation_id: str,
        *,
        size: int,
        token: str,
        newest_first: bool,
    ) -> tuple[list[Message], str, str]:
        """A page of messages, the token to continue, and the token to go back the other way.

        The direction is the token's own (a previous_page_token reverses it), otherwise
        newest_first's.
        """
        scope = f"messages:{actor.tenant_id}:{conversation_id}"
        key = decode_page_token(token, scope)
        if key is None:
            direction, boundary = (_DESCENDING if newest_first else _ASCENDING), None
        else:
            if (
                len(key) != 2
                or key[0] not in (_ASCENDING, _DESCENDING)
                or not isinstance(key[1], int)
            ):
                raise InvalidPageTokenError("malformed page token")
            direction, boundary = str(key[0]), int(key[1])
        limit = page_size(size)
        descending = direction == _DESCENDING
        async with self._db.pool.acquire() as conn:
            await readable_conversation(conn, actor, conversation_id)
            found = await messages_store.page(
                conn,
                actor.tenant_id,
                conversation_id,
                after=None if descending else boundary,
                before=boundary if descending else None,
                limit=limit + 1,
                descending=descending,
            )
        messages = found[:limit]
        next_token = ""
        if len(found) > limit:
            next_token = encode_page_token(scope, [direction, messages[-1].sequence])
        previous_token = ""
        # Nothing can come before the oldest message; newer ones may still arrive.
        if messages and (key is not None or descending):
            opposite = _ASCENDING if descending else _DESCENDING
            previous_token = encode_page_token(scope, [opposite, messages[0].sequence])
        return messages, next_token, previous_token

    async def update_status(
        self,
        actor: Actor,
        conversation_id: str,
        message_id: str,
        status: MessageStatus,
        *,
        failure_reason: str,
    ) -> Message:
        return await self._log.change_status(
            actor, conversation_id, message_id, status, failure_reason=failure_reason
        )
