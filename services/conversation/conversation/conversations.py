"""Use cases of conversations: create, get, list, close, and group membership."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Sequence

from conversation import bots_store, conversations_store, events
from conversation.conversations_store import ConversationFilter
from conversation.domain import (
    GROUP_MAX_USERS,
    GROUP_MIN_USERS,
    Actor,
    ActorKind,
    ChannelContact,
    Conversation,
    ConversationKind,
    may_access,
    plan_members,
)
from conversation.errors import (
    AlreadyExistsError,
    ConversationClosedError,
    FailedPreconditionError,
    ForbiddenError,
    NotFoundError,
)
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import DbConnection, PoolSource
from switchboard_runtime.pagination import page_size, time_key_after, time_keyed_page


async def readable_conversation(
    conn: DbConnection, actor: Actor, conversation_id: str, *, for_update: bool = False
) -> Conversation:
    """The conversation if `actor` may read and post in it; NotFound or Forbidden otherwise."""
    conversation = await conversations_store.conversation_by_id(
        conn, actor.tenant_id, conversation_id, for_update=for_update
    )
    if conversation is None:
        raise NotFoundError("conversation not found")
    is_member = actor.user_id is not None and actor.user_id in conversation.member_user_ids
    if not may_access(actor, created_by=conversation.created_by, is_member=is_member):
        raise ForbiddenError("you are not a member of this conversation")
    return conversation


class Conversations:
    def __init__(self, db: PoolSource, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(
        self,
        actor: Actor,
        *,
        kind: ConversationKind,
        title: str,
        bot_id: str | None,
        member_user_ids: Sequence[str],
        channel_contact: ChannelContact | None,
    ) -> Conversation:
        members = plan_members(
            actor,
            kind=kind,
            member_user_ids=member_user_ids,
            bot_id=bot_id,
            channel_contact=channel_contact,
        )
        if (
            kind is ConversationKind.CHANNEL
            and actor.kind is ActorKind.USER
            and not (actor.tenant_wide)
        ):
            raise ForbiddenError("channel conversations are opened by admins, API keys or services")
        conversation = Conversation(
            conversation_id=str(uuid.uuid4()),
            tenant_id=actor.tenant_id,
            kind=kind,
            title=title,
            bot_id=bot_id,
            member_user_ids=members,
            channel_contact=channel_contact,
            created_by=actor.subject,
            last_sequence=0,
            created_at=self._clock.now(),
        )
        async with self._db.pool.acquire() as conn, conn.transaction():
            if (
                bot_id is not None
                and await bots_store.bot_by_id(conn, actor.tenant_id, bot_id) is None
            ):
                raise NotFoundError("bot not found")
            if not await conversations_store.insert_conversation(
                conn, conversation, if_absent=True
            ):
                raise AlreadyExistsError("an open conversation with this channel contact exists")
            await events.conversation_created(conn, conversation)
        return conversation

    async def get(self, actor: Actor, conversation_id: str) -> Conversation:
        async with self._db.pool.acquire() as conn:
            return await readable_conversation(conn, actor, conversation_id)

    async def list(
        self, actor: Actor, where: ConversationFilter, *, size: int, token: str
    ) -> tuple[list[Conversation], str]:
        # The token is bound to the caller and the filters: it cannot be replayed elsewhere.
        fingerprint = hashlib.sha256(repr((actor, where)).encode()).hexdigest()[:16]
        scope = f"conversations:{fingerprint}"
        before = time_key_after(token, scope)
        limit = page_size(size)
        async with self._db.pool.acquire() as conn:
            found = await conversations_store.list_conversations(
                conn, actor, where, before=before, limit=limit + 1
            )
        return time_keyed_page(
            found, limit, scope, lambda item: (item.created_at, item.conversation_id)
        )

    async def close(self, actor: Actor, conversation_id: str) -> Conversation:
        now = self._clock.now()
        async with self._db.pool.acquire() as conn, conn.transaction():
            conversation = await readable_conversation(
                conn, actor, conversation_id, for_update=True
            )
            if not conversation.is_open:
                return conversation
            await conversations_store.close(conn, actor.tenant_id, conversation_id, now)
            closed = dataclasses.replace(conversation, closed_at=now)
            await events.conversation_closed(conn, closed, now)
        return closed

    async def add_member(self, actor: Actor, conversation_id: str, user_id: str) -> Conversation:
        async with self._db.pool.acquire() as conn, conn.transaction():
            conversation = await self._group_to_change(conn, actor, conversation_id)
            if user_id in conversation.member_user_ids:
                return conversation
            if len(conversation.member_user_ids) >= GROUP_MAX_USERS:
                raise FailedPreconditionError(f"a group has at most {GROUP_MAX_USERS} users")
            await conversations_store.add_member(conn, conversation, user_id, self._clock.now())
        return dataclasses.replace(
            conversation, member_user_ids=(*conversation.member_user_ids, user_id)
        )

    async def remove_member(self, actor: Actor, conversation_id: str, user_id: str) -> Conversation:
        async with self._db.pool.acquire() as conn, conn.transaction():
            conversation = await self._group_to_change(conn, actor, conversation_id)
            if user_id not in conversation.member_user_ids:
                return conversation
            if len(conversation.member_user_ids) <= GROUP_MIN_USERS:
                raise FailedPreconditionError(f"a group has at least {GROUP_MIN_USERS} users")
            await conversations_store.remove_member(conn, conversation, user_id)
        return dataclasses.replace(
            conversation,
            member_user_ids=tuple(m for m in conversation.member_user_ids if m != user_id),
        )

    @staticmethod
    async def _group_to_change(
        conn: DbConnection, actor: Actor, conversation_id: str
    ) -> Conversation:
        conversation = await readable_conversation(conn, actor, conversation_id, for_update=True)
        if conversation.kind is not ConversationKind.GROUP:
            raise FailedPreconditionError("only group conversations change members")
        if not conversation.is_open:
            raise ConversationClosedError()
        return conversation
