"""Postgres store of bots."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from conversation.domain import Bot, HistoryWindow
from switchboard_runtime.datastores import DbConnection

_COLUMNS = (
    "bot_id, tenant_id, name, system_prompt, model, temperature, top_p, max_tokens,"
    " history_max_messages, history_max_tokens, created_at, updated_at"
)


def _bot(row: asyncpg.Record) -> Bot:
    return Bot(
        bot_id=str(row["bot_id"]),
        tenant_id=str(row["tenant_id"]),
        name=row["name"],
        system_prompt=row["system_prompt"],
        model=row["model"],
        temperature=row["temperature"],
        top_p=row["top_p"],
        max_tokens=row["max_tokens"],
        history=HistoryWindow(
            max_messages=row["history_max_messages"], max_tokens=row["history_max_tokens"]
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_bot(conn: DbConnection, bot: Bot) -> None:
    await conn.execute(
        f"INSERT INTO bots ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        bot.bot_id,
        bot.tenant_id,
        bot.name,
        bot.system_prompt,
        bot.model,
        bot.temperature,
        bot.top_p,
        bot.max_tokens,
        bot.history.max_messages,
        bot.history.max_tokens,
        bot.created_at,
        bot.updated_at,
    )


async def bot_by_id(
    conn: DbConnection, tenant_id: str, bot_id: str, *, for_update: bool = False
) -> Bot | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM bots WHERE tenant_id = $1 AND bot_id = $2{lock}",
        tenant_id,
        bot_id,
    )
    return None if row is None else _bot(row)


async def list_bots(
    conn: DbConnection, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[Bot]:
    if after is None:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM bots WHERE tenant_id = $1"
            " ORDER BY created_at, bot_id LIMIT $2",
            tenant_id,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM bots WHERE tenant_id = $1"
            " AND (created_at, bot_id) > ($2, $3::uuid) ORDER BY created_at, bot_id LIMIT $4",
            tenant_id,
            after[0],
            after[1],
            limit,
        )
    return [_bot(row) for row in rows]


async def update_bot(conn: DbConnection, bot: Bot) -> None:
    await conn.execute(
        "UPDATE bots SET name = $3, system_prompt = $4, model = $5, temperature = $6,"
        " top_p = $7, max_tokens = $8, history_max_messages = $9, history_max_tokens = $10,"
        " updated_at = $11 WHERE tenant_id = $1 AND bot_id = $2",
        bot.tenant_id,
        bot.bot_id,
        bot.name,
        bot.system_prompt,
        bot.model,
        bot.temperature,
        bot.top_p,
        bot.max_tokens,
        bot.history.max_messages,
        bot.history.max_tokens,
        bot.updated_at,
    )


async def delete_bot(conn: DbConnection, tenant_id: str, bot_id: str) -> bool:
    status = await conn.execute(
        "DELETE FROM bots WHERE tenant_id = $1 AND bot_id = $2", tenant_id, bot_id
    )
    return bool(status == "DELETE 1")
