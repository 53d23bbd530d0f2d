"""Live fan-out over NATS: reply deltas out, and a conversation's events in, on any replica.

Reply deltas go on core NATS (`live.conversation.v1.reply_delta.<conversation_id>`): they are
not worth persisting, and whoever misses one still gets the stored reply. A watcher hears a
conversation's stored events (message created, status changed, closed) by subscribing with
core NATS to the CONVERSATION stream's own subjects, `conversation.v1.*.<conversation_id>`:
every publish the outbox relay makes into the stream also reaches plain subscribers. That
costs the server one subscription per watcher instead of one JetStream consumer each; what a
core subscriber may miss (a reconnect, a slow-consumer drop) the watch heals from Postgres,
which it treats as the source of truth (see `watch.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client
from nats.aio.msg import Msg

from conversation import events
from conversation.domain import ConversationClosed, LiveEvent, ReplyDelta
from conversation.proto_mapping import message_of, reply_delta_of, reply_delta_pb, status_change_of
from switchboard.conversation.v1 import events_pb2
from switchboard_runtime.event_streams import CONVERSATION, LIVE_REPLY_DELTAS

logger = logging.getLogger("conversation.live")

#: Events a watcher may hold before it stops queueing and re-reads Postgres instead.
_FEED_CAPACITY: Final = 10_000


def reply_delta_subject(conversation_id: str) -> str:
    return f"{LIVE_REPLY_DELTAS}.{conversation_id}"


def _decode(subject: str, data: bytes) -> LiveEvent | None:
    if subject.startswith(LIVE_REPLY_DELTAS + "."):
        return reply_delta_of(events_pb2.ReplyDeltaEvent.FromString(data).delta)
    event = subject.split(".")[-2]
    if event == events.MESSAGE_CREATED:
        return message_of(events_pb2.MessageCreatedEvent.FromString(data).message)
    if event == events.MESSAGE_STATUS_CHANGED:
        changed = events_pb2.MessageStatusChangedEvent.FromString(data)
        return status_change_of(changed.change, changed.previous_status)
    if event == events.CONVERSATION_CLOSED:
        closed = events_pb2.ConversationClosedEvent.FromString(data)
        return ConversationClosed(closed.conversation.conversation_id)
    return None


class LiveFeed:
    """The live events of one conversation, in the order they arrived."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=_FEED_CAPACITY)
        #: Set when events were dropped: the reader must re-read what it may have missed.
        self.overflowed = False

    async def on_message(self, message: Msg) -> None:
        try:
            event = _decode(message.subject, message.data)
        except (DecodeError, ValueError) as error:
            logger.warning("undecodable live event dropped", exc_info=error)
            return
        if event is None:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self, *, wait_seconds: float) -> LiveEvent | None:
        """The next event, or None if none came within `wait_seconds`."""
        # asyncio.timeout, not wait_for, which before Python 3.12 can lose a cancellation
        # that arrives as an event does (gh-86296): the watch would outlive its caller.
        try:
            async with asyncio.timeout(wait_seconds):
                return await self._queue.get()
        except TimeoutError:
            return None


class LiveEvents(Protocol):
    """Where deltas are published and a conversation's live events are heard."""

    async def publish_delta(self, tenant_id: str, delta: ReplyDelta) -> None: ...

    def watch(self, conversation_id: str) -> contextlib.AbstractAsyncContextManager[LiveFeed]: ...


class NatsLiveEvents:
    """`LiveEvents` on a NATS connection (the service's JetStreamBus client)."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client

    async def publish_delta(self, tenant_id: str, delta: ReplyDelta) -> None:
        event = events_pb2.ReplyDeltaEvent(tenant_id=tenant_id, delta=reply_delta_pb(delta))
        try:
            await self._client().publish(
                reply_delta_subject(delta.conversation_id), event.SerializeToString()
            )
        except nats.errors.Error as error:
            # Deltas are best effort: the stored reply reaches every watcher anyway.
            logger.debug("reply delta not published", exc_info=error)

    @contextlib.asynccontextmanager
    async def watch(self, conversation_id: str) -> AsyncIterator[LiveFeed]:
        """Subscribe, and return only once the server has the subscriptions, so anything
        published after this returns is heard."""
        client = self._client()
        feed = LiveFeed()
        subscriptions = [
            await client.subscribe(CONVERSATION.subject("*", conversation_id), cb=feed.on_message),
            await client.subscribe(reply_delta_subject(conversation_id), cb=feed.on_message),
        ]
        try:
            await client.flush(timeout=5)
            yield feed
        finally:
            for subscription in subscriptions:
                with contextlib.suppress(nats.errors.Error):
                    await subscription.unsubscribe()
