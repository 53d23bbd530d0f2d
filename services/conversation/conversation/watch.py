"""Use case: watch a conversation live, resuming after a sequence number with no gap and no
duplicate.

The order of work is what makes the switch-over exact: subscribe to the live events first
(and wait until NATS has the subscription), then replay the stored messages after
`after_sequence` from Postgres, then pass on live events, dropping messages whose sequence
was already sent. A message committed before the replay's read is in the replay; one
committed after it is published after it, so the subscription hears it.

Postgres is the source of truth, NATS only the doorbell: a live message whose sequence skips
ahead, a feed that overflowed, or a quiet spell of `resync_seconds` makes the watch read
what it may have missed from Postgres, so a live event lost on the way (a reconnect, a slow
subscriber) never leaves a gap.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Final

from conversation import messages_store
from conversation.conversations import readable_conversation
from conversation.domain import (
    Actor,
    Conversation,
    ConversationClosed,
    Message,
    MessageStatus,
    ReplyDelta,
    StatusChange,
    moves_forward,
)
from conversation.live_bus import LiveEvents
from switchboard_runtime.datastores import PoolSource

#: What a watcher receives: stored messages, status changes, reply deltas, and last the
#: conversation, once it is closed.
WatchEvent = Message | StatusChange | ReplyDelta | Conversation

_REPLAY_BATCH: Final = 200


class Watches:
    def __init__(self, db: PoolSource, *, live: LiveEvents, resync_seconds: float) -> None:
        self._db = db
        self._live = live
        self._resync_seconds = resync_seconds

    async def watch(
        self, actor: Actor, conversation_id: str, *, after_sequence: int
    ) -> AsyncGenerator[WatchEvent, None]:
        await self._readable(actor, conversation_id)
        async with self._live.watch(conversation_id) as feed:
            cursor = _Cursor(after_sequence)
            async for message in self._stored_after(actor, conversation_id, cursor):
                yield message
            conversation = await self._readable(actor, conversation_id)
            if not conversation.is_open:
                async for message in self._stored_after(actor, conversation_id, cursor):
                    yield message
                yield conversation
                return
            while True:
                event = await feed.next(wait_seconds=self._resync_seconds)
                if event is None or feed.overflowed:
                    # Quiet, or events were dropped: read what may have been missed, and
                    # make sure the watcher may still read this conversation.
                    feed.overflowed = False
                    await self._readable(actor, conversation_id)
                    async for message in self._stored_after(actor, conversation_id, cursor):
                        yield message
                    if event is None:
                        continue
                if isinstance(event, Message):
                    if event.sequence <= cursor.sequence:
                        continue  # replayed already, or heard twice
                    if event.sequence == cursor.sequence + 1:
                        cursor.saw(event)
                        yield event
                    else:  # a live event went missing: Postgres has it
                        async for message in self._stored_after(actor, conversation_id, cursor):
                            yield message
                elif isinstance(event, StatusChange):
                    if cursor.status_is_news(event):
                        yield event
                elif isinstance(event, ReplyDelta):
                    yield event
                elif isinstance(event, ConversationClosed):
                    async for message in self._stored_after(actor, conversation_id, cursor):
                        yield message
                    yield await self._readable(actor, conversation_id)
                    return

    async def _readable(self, actor: Actor, conversation_id: str) -> Conversation:
        async with self._db.pool.acquire() as conn:
            return await readable_conversation(conn, actor, conversation_id)

    async def _stored_after(
        self, actor: Actor, conversation_id: str, cursor: _Cursor
    ) -> AsyncIterator[Message]:
        """Stored messages after the cursor, in order, a batch at a time (no connection is
        held while the watcher reads)."""
        while True:
            async with self._db.pool.acquire() as conn:
                batch = await messages_store.page(
                    conn,
                    actor.tenant_id,
                    conversation_id,
                    after=cursor.sequence,
                    limit=_REPLAY_BATCH,
                )
            for message in batch:
                cursor.saw(message)
                yield message
            if len(batch) < _REPLAY_BATCH:
                return


class _Cursor:
    """Where a watcher stands: the last sequence sent, and the statuses it knows."""

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence
        self._statuses: dict[str, MessageStatus] = {}

    def saw(self, message: Message) -> None:
        self.sequence = message.sequence
        self._statuses[message.message_id] = message.status

    def status_is_news(self, change: StatusChange) -> bool:
        known = self._statuses.get(change.message_id)
        if known is not None and not moves_forward(known, change.status):
            return False  # the replay showed it already, or a duplicate publish
        self._statuses[change.message_id] = change.status
        return True
