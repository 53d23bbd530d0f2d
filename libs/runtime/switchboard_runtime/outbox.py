"""Transactional outbox: events written with the change that caused them, then relayed.

A service writes an event into its `event_outbox` table in the same transaction as the change
(`add_event`), so either both happen or neither does. `OutboxRelay`, a background task,
publishes pending rows to JetStream in `position` order with the row id as `Nats-Msg-Id`
(JetStream drops the duplicate if the process dies between publish and marking the row) and
then marks them published. One relay per database publishes at a time (a Postgres advisory
lock), which keeps events in commit order across replicas.

Each service's migrations create the table::

    CREATE TABLE event_outbox (
        event_id     uuid PRIMARY KEY,
        position     bigserial NOT NULL UNIQUE,
        subject      text NOT NULL,
        payload      bytea NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
    );
    CREATE INDEX event_outbox_pending ON event_outbox (position) WHERE published_at IS NULL;
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Final

import asyncpg
from google.protobuf.message import Message
from nats.js import JetStreamContext

from switchboard_runtime.datastores import DbConnection
from switchboard_runtime.jetstream import publish

logger = logging.getLogger("switchboard.outbox")

#: Postgres NOTIFY channel that wakes the relay when a transaction added events.
NOTIFY_CHANNEL: Final = "event_outbox"


async def add_event(
    connection: DbConnection, subject: str, event: Message, *, event_id: str | None = None
) -> str:
    """Queue `event` for `subject` inside the caller's transaction; return its event id."""
    event_id = event_id or str(uuid.uuid4())
    # One statement, so one round trip: it sits on the path of every write that emits an
    # event. (A data-modifying WITH runs whether or not the outer query reads it.)
    await connection.execute(
        "WITH queued AS (INSERT INTO event_outbox (event_id, subject, payload)"
        " VALUES ($1, $2, $3)) SELECT pg_notify($4, '')",
        event_id,
        subject,
        event.SerializeToString(),
        NOTIFY_CHANNEL,
    )
    return event_id


class OutboxRelay:
    """Publishes pending outbox rows to JetStream; run `run()` as an owned background task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        *,
        lock_id: int,
        batch_size: int = 100,
        poll_interval_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._js = js
        self._lock_id = lock_id
        self._batch_size = batch_size
        self._poll_interval = poll_interval_seconds
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Relay until cancelled; wait for leadership while another replica relays."""
        async with self._pool.acquire() as listener:
            await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
            try:
                while True:
                    await self._lead_while_possible()
                    await self._wait()
            finally:
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    await listener.remove_listener(NOTIFY_CHANNEL, self._on_notify)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
        self._wake.clear()

    async def _lead_while_possible(self) -> None:
        async with self._pool.acquire() as connection:
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id):
                return
            try:
                while True:
                    self._wake.clear()
                    if await self.relay_pending(connection) < self._batch_size:
                        await self._wait()
            except (asyncpg.PostgresError, OSError) as error:
                logger.warning("outbox relay interrupted; retrying", exc_info=error)
                await asyncio.sleep(self._poll_interval)
            finally:
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    await connection.execute("SELECT pg_advisory_unlock($1)", self._lock_id)

    async def relay_pending(self, connection: DbConnection) -> int:
        """Publish one batch of pending events in order; return how many were published."""
        rows = await connection.fetch(
            "SELECT event_id, subject, payload FROM event_outbox WHERE published_at IS NULL "
            "ORDER BY position LIMIT $1",
            self._batch_size,
        )
        for row in rows:
            try:
                await publish(self._js, row["subject"], row["payload"], msg_id=str(row["event_id"]))
            except Exception as error:
                # Keep order: stop at the first failure and retry the same row next round.
                logger.warning("outbox publish failed; will retry", exc_info=error)
                await asyncio.sleep(self._poll_interval)
                return 0
            await connection.execute(
                "UPDATE event_outbox SET published_at = now() WHERE event_id = $1", row["event_id"]
            )
        return len(rows)
