"""Postgres store of conversations and their members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from conversation.domain import Actor, ActorKind, ChannelContact, Conversation, ConversationKind
from switchboard_runtime.datastores import DbConnection

_SELECT = (
    "SELECT c.conversation_id, c.tenant_id, c.kind, c.title, c.bot_id, c.channel_id,"
    " c.external_contact_id, c.contact_display_name, c.created_by, c.last_sequence,"
    " c.created_at, c.closed_at,"
    " COALESCE((SELECT array_agg(m.user_id ORDER BY m.added_at, m.user_id)"
    " FROM conversation_members m WHERE m.conversation_id = c.conversation_id), '{}') AS members"
    " FROM conversations c"
)


def _conversation(row: asyncpg.Record) -> Conversation:
    contact = None
    if row["channel_id"] is not None:
        contact = ChannelContact(
            channel_id=str(row["channel_id"]),
            external_contact_id=row["external_contact_id"],
            display_name=row["contact_display_name"],
        )
    return Conversation(
        conversation_id=str(row["conversation_id"]),
        tenant_id=str(row["tenant_id"]),
        kind=ConversationKind(row["kind"]),
        title=row["title"],
        bot_id=None if row["bot_id"] is None else str(row["bot_id"]),
        member_user_ids=tuple(str(member) for member in row["members"]),
        channel_contact=contact,
        created_by=row["created_by"],
        last_sequence=row["last_sequence"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
    )


async def insert_conversation(
    conn: DbConnection, conversation: Conversation, *, if_absent: bool = False
) -> bool:
    """Insert the conversation and its members; with `if_absent`, return False (and insert
    nothing) when an open channel conversation for that contact already exists."""
    contact = conversation.channel_contact
    conflict = " ON CONFLICT DO NOTHING" if if_absent else ""
    status = await conn.execute(
        "INSERT INTO conversations (conversation_id, tenant_id, kind, title, bot_id, channel_id,"
        " external_contact_id, contact_display_name, created_by, last_sequence, created_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10){conflict}",
        conversation.conversation_id,
        conversation.tenant_id,
        int(conversation.kind),
        conversation.title,
        conversation.bot_id,
        contact.channel_id if contact else None,
        contact.external_contact_id if contact else None,
        contact.display_name if contact else "",
        conversation.created_by,
        conversation.created_at,
    )
    if status != "INSERT 0 1":
        return False
    if conversation.member_user_ids:
        await conn.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id, tenant_id, added_at)"
            " VALUES ($1, $2, $3, $4)",
            [
                (
                    conversation.conversation_id,
                    user_id,
                    conversation.tenant_id,
                    conversation.created_at,
                )
                for user_id in conversation.member_user_ids
            ],
        )
    return True


async def conversation_by_id(
    conn: DbConnection, tenant_id: str, conversation_id: str, *, for_update: bool = False
) -> Conversation | None:
    lock = " FOR UPDATE OF c" if for_update else ""
    row = await conn.fetchrow(
        f"{_SELECT} WHERE c.tenant_id = $1 AND c.conversation_id = $2{lock}",
        tenant_id,
        conversation_id,
    )
    return None if row is None else _conversation(row)


async def open_channel_conversation(
    conn: DbConnection, tenant_id: str, channel_id: str, external_contact_id: str
) -> Conversation | None:
    row = await conn.fetchrow(
        f"{_SELECT} WHERE c.tenant_id = $1 AND c.channel_id = $2 AND c.external_contact_id = $3"
        " AND c.closed_at IS NULL",
        tenant_id,
        channel_id,
        external_contact_id,
    )
    return None if row is None else _conversation(row)


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    member_user_id: str | None = None
    bot_id: str | None = None
    channel_id: str | None = None
    #: None: both; True: open only; False: closed only.
    open: bool | None = None


async def list_conversations(
    conn: DbConnection,
    actor: Actor,
    where: ConversationFilter,
    *,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Conversation]:
    """The actor's readable conversations, newest first, older than `before`."""
    conditions = ["c.tenant_id = $1"]
    args: list[Any] = [actor.tenant_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    member_exists = (
        "EXISTS (SELECT 1 FROM conversation_members m"
        " WHERE m.conversation_id = c.conversation_id AND m.user_id = {})"
    )
    if not actor.tenant_wide:
        if actor.kind is ActorKind.USER:
            conditions.append(member_exists.format(arg(actor.subject) + "::uuid"))
        else:
            conditions.append(f"c.created_by = {arg(actor.subject)}")
    if where.member_user_id is not None:
        conditions.append(member_exists.format(arg(where.member_user_id) + "::uuid"))
    if where.bot_id is not None:
        conditions.append(f"c.bot_id = {arg(where.bot_id)}::uuid")
    if where.channel_id is not None:
        conditions.append(f"c.channel_id = {arg(where.channel_id)}::uuid")
    if where.open is not None:
        conditions.append("c.closed_at IS NULL" if where.open else "c.closed_at IS NOT NULL")
    if before is not None:
        conditions.append(
            f"(c.created_at, c.conversation_id) < ({arg(before[0])}, {arg(before[1])}::uuid)"
        )
    rows = await conn.fetch(
        f"{_SELECT} WHERE {' AND '.join(conditions)}"
        f" ORDER BY c.created_at DESC, c.conversation_id DESC LIMIT {arg(limit)}",
        *args,
    )
    return [_conversation(row) for row in rows]


async def close(conn: DbConnection, tenant_id: str, conversation_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE conversations SET closed_at = $3 WHERE tenant_id = $1 AND conversation_id = $2",
        tenant_id,
        conversation_id,
        now,
    )


async def add_member(
    conn: DbConnection, conversation: Conversation, user_id: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO conversation_members (conversation_id, user_id, tenant_id, added_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        conversation.conversation_id,
        user_id,
        conversation.tenant_id,
        now,
    )


async def remove_member(conn: DbConnection, conversation: Conversation, user_id: str) -> None:
    await conn.execute(
        "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
        conversation.conversation_id,
        user_id,
    )
