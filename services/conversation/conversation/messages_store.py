"""Postgres store of messages: the gap-free, idempotent append and the reads.

`append` is one statement: it bumps the conversation's `last_sequence` (row-locking that
conversation only, so concurrent senders to it queue up while other conversations proceed)
and inserts the message with the new number, `ON CONFLICT DO NOTHING` on the idempotency
keys. The caller's transaction commits both or, for a replay, rolls the bump back: the
counter is a column, not a Postgres sequence, so a rolled-back bump leaves no gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from conversation.domain import (
    Actor,
    ActorKind,
    AuthorKind,
    ChannelContact,
    ConversationKind,
    Message,
    MessageStatus,
    NewMessage,
)
from switchboard_runtime.datastores import DbConnection

_COLUMNS = (
    "message_id, conversation_id, tenant_id, sequence, client_message_id, author_kind,"
    " author_id, text, status, failure_reason, reply_to_message_id, platform_message_id,"
    " created_at, updated_at"
)

_APPEND = """
WITH conv AS (
    UPDATE conversations c SET last_sequence = c.last_sequence + 1
    WHERE c.tenant_id = $1 AND c.conversation_id = $2
      AND ($3::boolean OR c.closed_at IS NULL)
      AND ($4::boolean OR c.created_by = $5 OR EXISTS (
            SELECT 1 FROM conversation_members m
            WHERE m.conversation_id = c.conversation_id AND m.user_id = $6::uuid))
    RETURNING c.last_sequence, c.kind, c.bot_id, c.channel_id, c.external_contact_id,
              c.contact_display_name
), inserted AS (
    INSERT INTO messages (message_id, conversation_id, tenant_id, sequence, client_message_id,
        author_kind, author_id, text, status, failure_reason, reply_to_message_id,
        platform_message_id, channel_id, created_at, updated_at)
    SELECT $7, $2, $1, conv.last_sequence, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17
    FROM conv
    ON CONFLICT DO NOTHING
    RETURNING sequence
)
SELECT conv.*, (SELECT sequence FROM inserted) AS inserted_sequence FROM conv
"""


def _message(row: asyncpg.Record) -> Message:
    return Message(
        message_id=str(row["message_id"]),
        conversation_id=str(row["conversation_id"]),
        tenant_id=str(row["tenant_id"]),
        sequence=row["sequence"],
        client_message_id=row["client_message_id"],
        author_kind=AuthorKind(row["author_kind"]),
        author_id=row["author_id"],
        text=row["text"],
        status=MessageStatus(row["status"]),
        failure_reason=row["failure_reason"],
        reply_to_message_id=(
            None if row["reply_to_message_id"] is None else str(row["reply_to_message_id"])
        ),
        platform_message_id=row["platform_message_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


@dataclass(frozen=True, slots=True)
class Appended:
    """A message appended (or found already there), with what its events need to know."""

    message: Message
    kind: ConversationKind
    bot_id: str | None
    channel_contact: ChannelContact | None


@dataclass(frozen=True, slots=True)
class Replay:
    """The idempotency key was taken: the caller must roll back and read the stored one."""


async def append(
    conn: DbConnection, new: NewMessage, actor: Actor, *, allow_closed: bool = False
) -> Appended | Replay | None:
    """Append `new` in the caller's transaction.

    None when nothing was written: no such conversation in the tenant, no access, or closed.
    """
    row = await conn.fetchrow(
        _APPEND,
        new.tenant_id,
        new.conversation_id,
        allow_closed,
        actor.tenant_wide,
        actor.subject if actor.kind is ActorKind.API_KEY else None,
        actor.user_id,
        new.message_id,
        new.client_message_id,
        int(new.author_kind),
        new.author_id,
        new.text,
        int(new.status),
        new.failure_reason,
        new.reply_to_message_id,
        new.platform_message_id,
        new.inbound_channel_id,
        new.created_at,
    )
    if row is None:
        return None
    if row["inserted_sequence"] is None:
        return Replay()
    contact = None
    if row["channel_id"] is not None:
        contact = ChannelContact(
            channel_id=str(row["channel_id"]),
            external_contact_id=row["external_contact_id"],
            display_name=row["contact_display_name"],
        )
    return Appended(
        message=new.stored(row["inserted_sequence"]),
        kind=ConversationKind(row["kind"]),
        bot_id=None if row["bot_id"] is None else str(row["bot_id"]),
        channel_contact=contact,
    )


async def by_idempotency_key(conn: DbConnection, new: NewMessage) -> Message | None:
    """The stored message `new` is a replay of, by client id or by inbound platform id."""
    if new.inbound_channel_id is not None:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM messages WHERE tenant_id = $1 AND channel_id = $2"
            " AND platform_message_id = $3",
            new.tenant_id,
            new.inbound_channel_id,
            new.platform_message_id,
        )
        if row is not None:
            return _message(row)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2"
        " AND client_message_id = $3",
        new.tenant_id,
        new.conversation_id,
        new.client_message_id,
    )
    return None if row is None else _message(row)


async def message_by_id(
    conn: DbConnection,
    tenant_id: str,
    conversation_id: str,
    message_id: str,
    *,
    for_update: bool = False,
) -> Message | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2"
        f" AND message_id = $3{lock}",
        tenant_id,
        conversation_id,
        message_id,
    )
    return None if row is None else _message(row)


async def page(
    conn: DbConnection,
    tenant_id: str,
    conversation_id: str,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int,
    descending: bool = False,
) -> list[Message]:
    """Messages with sequence in (after, before), in sequence order or its reverse."""
    order = "DESC" if descending else "ASC"
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2"
        " AND sequence > $3 AND sequence < $4"
        f" ORDER BY sequence {order} LIMIT $5",
        tenant_id,
        conversation_id,
        0 if after is None else after,
        2**62 if before is None else before,
        limit,
    )
    return [_message(row) for row in rows]


async def history(
    conn: DbConnection, tenant_id: str, conversation_id: str, *, up_to: int, limit: int
) -> list[Message]:
    """The last `limit` messages up to sequence `up_to`, oldest first."""
    newest_first = await page(
        conn, tenant_id, conversation_id, before=up_to + 1, limit=limit, descending=True
    )
    return list(reversed(newest_first))


async def reply_to(
    conn: DbConnection, tenant_id: str, conversation_id: str, message_id: str
) -> Message | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2"
        " AND reply_to_message_id = $3 ORDER BY sequence LIMIT 1",
        tenant_id,
        conversation_id,
        message_id,
    )
    return None if row is None else _message(row)


async def set_status(
    conn: DbConnection,
    message: Message,
    status: MessageStatus,
    *,
    failure_reason: str,
    platform_message_id: str,
    now: datetime,
) -> Message:
    row = await conn.fetchrow(
        "UPDATE messages SET status = $3, failure_reason = $4,"
        " platform_message_id = CASE WHEN platform_message_id = '' THEN $5"
        " ELSE platform_message_id END, updated_at = $6"
        f" WHERE tenant_id = $1 AND message_id = $2 RETURNING {_COLUMNS}",
        message.tenant_id,
        message.message_id,
        int(status),
        failure_reason,
        platform_message_id,
        now,
    )
    if row is None:  # the caller holds the row lock: it cannot have gone
        raise LookupError(f"message {message.message_id} vanished")
    return _message(row)
