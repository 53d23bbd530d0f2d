"""Use cases of bots: create, get, list, update, delete (admins write, members read)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

from conversation import bots_store
from conversation.domain import Actor, Bot
from conversation.errors import NotFoundError
from switchboard_runtime.clock import Clock
from switchboard_runtime.datastores import PoolSource
from switchboard_runtime.pagination import page_size, time_key_after, time_keyed_page

#: The settable fields of a bot, by the name `Bot` gives them.
SETTABLE_FIELDS = frozenset(
    {"name", "system_prompt", "model", "temperature", "top_p", "max_tokens", "history"}
)


class Bots:
    def __init__(self, db: PoolSource, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, actor: Actor, settings: Mapping[str, Any]) -> Bot:
        now = self._clock.now()
        bot = Bot(
            bot_id=str(uuid.uuid4()),
            tenant_id=actor.tenant_id,
            created_at=now,
            updated_at=now,
            **{name: settings[name] for name in SETTABLE_FIELDS},
        )
        async with self._db.pool.acquire() as conn:
            await bots_store.insert_bot(conn, bot)
        return bot

    async def get(self, actor: Actor, bot_id: str) -> Bot:
        async with self._db.pool.acquire() as conn:
            bot = await bots_store.bot_by_id(conn, actor.tenant_id, bot_id)
        if bot is None:
            raise NotFoundError("bot not found")
        return bot

    async def list(self, actor: Actor, *, size: int, token: str) -> tuple[list[Bot], str]:
        scope = f"bots:{actor.tenant_id}"
        after = time_key_after(token, scope)
        limit = page_size(size)
        async with self._db.pool.acquire() as conn:
            bots = await bots_store.list_bots(conn, actor.tenant_id, after=after, limit=limit + 1)
        return time_keyed_page(bots, limit, scope, lambda item: (item.created_at, item.bot_id))

    async def update(self, actor: Actor, bot_id: str, changes: Mapping[str, Any]) -> Bot:
        """Set the fields in `changes` (a subset of SETTABLE_FIELDS)."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            bot = await bots_store.bot_by_id(conn, actor.tenant_id, bot_id, for_update=True)
            if bot is None:
                raise NotFoundError("bot not found")
            updated = dataclasses.replace(bot, updated_at=self._clock.now(), **changes)
            await bots_store.update_bot(conn, updated)
        return updated

    async def delete(self, actor: Actor, bot_id: str) -> None:
        async with self._db.pool.acquire() as conn:
            if not await bots_store.delete_bot(conn, actor.tenant_id, bot_id):
                raise NotFoundError("bot not found")
