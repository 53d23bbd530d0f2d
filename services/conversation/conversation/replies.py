"""Bot replies: build the prompt, stream the reply from the model, store it once it completes.

A reply is generated in a task this object owns, never in the sender's call: if the sender
goes away mid-reply, the generation carries on and the full reply is still stored. Each piece
goes to whoever listens on this replica (the sender's SendAndStreamReply) and to watchers on
every replica (core NATS). The reply is stored under the idempotency key
`reply:<message id>`, so however often generation runs for a message (a redelivered event,
a second replica), one reply is stored. If the model fails, the reply is stored FAILED with
the reason and whatever text had arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

from conversation import bots_store, messages_store
from conversation.access import system_actor
from conversation.domain import (
    AuthorKind,
    Message,
    MessageStatus,
    NewMessage,
    ReplyDelta,
    build_prompt,
    history_limit,
)
from conversation.errors import ReplyModelError
from conversation.live_bus import LiveEvents
from conversation.llm_client import ReplyModel
from conversation.message_log import MessageLog
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import PoolSource
from switchboard_runtime.request_context import deadline_var

logger = logging.getLogger("conversation.replies")

#: Stored as the reason of a reply cut short by shutdown.
INTERRUPTED: Final = "the reply was interrupted: the service shut down"
#: How long storing an interrupted reply may take during shutdown.
_STORE_ON_SHUTDOWN_SECONDS: Final = 5.0


def reply_key(message_id: str) -> str:
    """The idempotency key of the bot's reply to message `message_id`."""
    return f"reply:{message_id}"


@dataclass(frozen=True, slots=True)
class ReplyCompleted:
    """The stored reply (None when there is none: the bot was deleted, or storing failed)."""

    message: Message | None


ReplyEvent = ReplyDelta | ReplyCompleted


class ReplyStream:
    """One listener's view of a reply: its deltas in order, then ReplyCompleted."""

    def __init__(self, backlog: list[ReplyDelta]) -> None:
        self._queue: asyncio.Queue[ReplyEvent] = asyncio.Queue()
        for delta in backlog:
            self._queue.put_nowait(delta)

    def put(self, event: ReplyEvent) -> None:
        self._queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[ReplyEvent]:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, ReplyCompleted):
                return


@dataclass(eq=False)
class _Generation:
    tenant_id: str
    conversation_id: str
    bot_id: str
    message: Message
    reply_message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deltas: list[ReplyDelta] = field(default_factory=list)
    listeners: list[ReplyStream] = field(default_factory=list)

    def listen(self) -> ReplyStream:
        stream = ReplyStream(list(self.deltas))
        self.listeners.append(stream)
        return stream

    def emit(self, event: ReplyEvent) -> None:
        if isinstance(event, ReplyDelta):
            self.deltas.append(event)
        for listener in self.listeners:
            listener.put(event)


class Replies:
    def __init__(
        self,
        db: PoolSource,
        *,
        log: MessageLog,
        model: ReplyModel,
        live: LiveEvents,
        clock: Clock,
    ) -> None:
        self._db = db
        self._log = log
        self._model = model
        self._live = live
        self._clock = clock
        self._running: dict[str, _Generation] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def start(
        self, tenant_id: str, conversation_id: str, bot_id: str, message: Message
    ) -> ReplyStream:
        """Generate the bot's reply to `message` (or join the generation under way)."""
        running = self._running.get(message.message_id)
        if running is not None:
            return running.listen()
        generation = _Generation(tenant_id, conversation_id, bot_id, message)
        stream = generation.listen()
        if self._closing:
            generation.emit(ReplyCompleted(None))
            return stream
        self._running[message.message_id] = generation
        task = asyncio.create_task(self._generate(generation), name=f"reply:{message.message_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return stream

    def join(self, message_id: str) -> ReplyStream | None:
        """Listen to the reply to `message_id` if this replica is generating it."""
        running = self._running.get(message_id)
        return None if running is None else running.listen()

    async def reply_needed(self, tenant_id: str, conversation_id: str, message_id: str) -> bool:
        """True unless a reply to the message is stored or being generated here."""
        if message_id in self._running:
            return False
        async with self._db.pool.acquire() as conn:
            stored = await messages_store.reply_to(conn, tenant_id, conversation_id, message_id)
        return stored is None

    async def close(self, *, grace_seconds: float) -> None:
        """Let replies under way finish for `grace_seconds`, then cut them short (each is
        stored FAILED as interrupted). Start no new ones."""
        self._closing = True
        if not self._tasks:
            return
        _, unfinished = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        # The first cancellation gives each reply time to store itself as interrupted; any
        # still running after that lost the cancellation somewhere and gets another.
        wait_seconds = _STORE_ON_SHUTDOWN_SECONDS + 1.0
        for _ in range(10):
            if not unfinished:
                return
            for task in unfinished:
                task.cancel()
            _, unfinished = await asyncio.wait(unfinished, timeout=wait_seconds)
            wait_seconds = 0.1
        logger.error("%d replies ignored cancellation at shutdown", len(unfinished))

    async def _generate(self, generation: _Generation) -> None:
        # The reply outlives the sender's call: its deadline must not cut the model short.
        deadline_var.set(None)
        pieces: list[str] = []
        stored: Message | None = None
        try:
            failure = ""
            try:
                has_bot = await self._prompt_and_stream(generation, pieces)
            except ReplyModelError as error:
                has_bot, failure = True, error.reason
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._store(generation, "".join(pieces), INTERRUPTED),
                        timeout=_STORE_ON_SHUTDOWN_SECONDS,
                    )
                raise
            except Exception as error:
                logger.error("reply generation failed", exc_info=error)
                has_bot, failure = True, "internal error while generating the reply"
            if has_bot:
                stored = await self._store(generation, "".join(pieces), failure)
        except Exception as error:
            logger.error("reply could not be stored", exc_info=error)
        finally:
            self._running.pop(generation.message.message_id, None)
            generation.emit(ReplyCompleted(stored))

    async def _prompt_and_stream(self, generation: _Generation, pieces: list[str]) -> bool:
        """Stream the reply into `pieces`; False if there is no bot to reply any more."""
        tenant_id, conversation_id = generation.tenant_id, generation.conversation_id
        async with self._db.pool.acquire() as conn:
            bot = await bots_store.bot_by_id(conn, tenant_id, generation.bot_id)
            if bot is None:
                return False
            history = await messages_store.history(
                conn,
                tenant_id,
                conversation_id,
                up_to=generation.message.sequence,
                limit=history_limit(bot.history),
            )
        stream = self._model.stream(tenant_id, build_prompt(bot, history))
        async with contextlib.aclosing(stream):
            async for piece in stream:
                delta = ReplyDelta(
                    conversation_id=conversation_id,
                    reply_to_message_id=generation.message.message_id,
                    reply_message_id=generation.reply_message_id,
                    index=len(pieces),
                    text=piece,
                )
                pieces.append(piece)
                generation.emit(delta)
                await self._live.publish_delta(tenant_id, delta)
        return True

    async def _store(self, generation: _Generation, text: str, failure: str) -> Message:
        reply = NewMessage(
            message_id=generation.reply_message_id,
            conversation_id=generation.conversation_id,
            tenant_id=generation.tenant_id,
            client_message_id=reply_key(generation.message.message_id),
            author_kind=AuthorKind.BOT,
            author_id=generation.bot_id,
            text=text,
            created_at=self._clock.now(),
            status=MessageStatus.FAILED if failure else MessageStatus.ACCEPTED,
            failure_reason=failure,
            reply_to_message_id=generation.message.message_id,
        )
        # A reply completes what was accepted before any close, so it is stored regardless.
        posted = await self._log.post(system_actor(generation.tenant_id), reply, allow_closed=True)
        return posted.message
