"""The identity service's events, queued in its outbox in the transaction of the change."""

from __future__ import annotations

import uuid
from datetime import datetime

from identity.domain import User
from identity.proto_mapping import role_pb, user_pb
from switchboard.identity.v1 import events_pb2
from switchboard_runtime.datastores import DbConnection
from switchboard_runtime.event_streams import IDENTITY
from switchboard_runtime.outbox import add_event
from switchboard_runtime.principal import Role
from switchboard_runtime.proto_time import timestamp


async def user_created(conn: DbConnection, user: User, now: datetime) -> None:
    event_id = str(uuid.uuid4())
    event = events_pb2.UserCreatedEvent(
        event_id=event_id, tenant_id=user.tenant_id, occur_time=timestamp(now), user=user_pb(user)
    )
    await add_event(conn, IDENTITY.subject("user_created"), event, event_id=event_id)


async def user_deactivated(conn: DbConnection, user: User, actor_id: str, now: datetime) -> None:
    event_id = str(uuid.uuid4())
    event = events_pb2.UserDeactivatedEvent(
        event_id=event_id,
        tenant_id=user.tenant_id,
        occur_time=timestamp(now),
        user_id=user.user_id,
        actor_user_id=actor_id,
    )
    await add_event(conn, IDENTITY.subject("user_deactivated"), event, event_id=event_id)


async def user_role_changed(
    conn: DbConnection, user: User, old_role: Role, actor_id: str, now: datetime
) -> None:
    event_id = str(uuid.uuid4())
    event = events_pb2.UserRoleChangedEvent(
        event_id=event_id,
        tenant_id=user.tenant_id,
        occur_time=timestamp(now),
        user_id=user.user_id,
        old_role=role_pb(old_role),
        new_role=role_pb(user.role),
        actor_user_id=actor_id,
    )
    await add_event(conn, IDENTITY.subject("user_role_changed"), event, event_id=event_id)
